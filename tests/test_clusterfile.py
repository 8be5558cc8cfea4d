"""Clusterfile loading: schemas, positions, semantic checks, env substitution."""

from __future__ import annotations

import textwrap

import pytest

from cluster import clusterfile
from cluster.errors import InputError
from tests.helpers import cluster_doc, make_image, write_clusterfile

VALID = """\
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: demo
spec:
  image: image
  env: [PodCIDR=100.64.0.0/10, A=1, A=2]
  ssh: {user: root, passwd: "${SSH_PASSWORD}", port: "22"}
  hosts:
    - ips: [192.168.0.2, 192.168.0.3-192.168.0.4]
      roles: [master]
      env: [EtcdDevice=/dev/vdb]
    - ips: [192.168.0.5]
      roles: [node]
      ssh: {port: 2222}
      labels: {disk: ssd, "example.com/tier": 1}
      taints: ["dedicated=db:NoSchedule", "gpu:NoExecute", "old-"]
"""


def write(tmp_path, text: str):
    path = tmp_path / "Clusterfile"
    path.write_text(textwrap.dedent(text))
    return str(path)


def errors_of(path, environ=None) -> list[str]:
    with pytest.raises(InputError) as info:
        clusterfile.load(path, environ if environ is not None else {"SSH_PASSWORD": "pw"})
    return info.value.problems


def test_valid_clusterfile_loads_into_the_desired_model(tmp_path, image):
    cluster, warnings = clusterfile.load(write(tmp_path, VALID), {"SSH_PASSWORD": "s3cret"})
    assert warnings == []
    assert cluster.name == "demo"
    assert cluster.masters == ["192.168.0.2", "192.168.0.3", "192.168.0.4"]
    assert cluster.workers == ["192.168.0.5"]
    assert cluster.env == {"PodCIDR": "100.64.0.0/10", "A": "2"}  # the last duplicate wins
    master = cluster.hosts["192.168.0.2"]
    assert master.env["EtcdDevice"] == "/dev/vdb" and master.env["A"] == "2"
    assert master.ssh.password == "s3cret" and master.ssh.port == 22
    worker = cluster.hosts["192.168.0.5"]
    assert worker.ssh.port == 2222 and worker.ssh.user == "root"
    assert worker.labels == {"disk": "ssd", "example.com/tier": "1"}
    assert worker.taints == ("dedicated=db:NoSchedule", "gpu:NoExecute", "old-")
    assert cluster.image.runtime == "kubernetes" and cluster.image.version == "v1.25.3"
    assert cluster.image.digest.startswith("sha256:")


def test_schema_error_names_file_line_column_and_path(tmp_path, image):
    path = write(tmp_path, VALID.replace("[192.168.0.5]", "[300.1.1.1]"))
    assert errors_of(path) == [
        f"{path}:13:13: spec.hosts[1].ips[0]: '300.1.1.1' is not a valid IP address"
    ]


def test_every_error_of_the_file_is_reported_in_file_order(tmp_path, image):
    text = VALID.replace("A=1", "NOEQUALS").replace("[192.168.0.5]", "[300.1.1.1, 192.168.0.2]")
    text = text.replace('"gpu:NoExecute"', '"gpu:Sometimes"')
    problems = errors_of(write(tmp_path, text))
    assert len(problems) == 4
    assert "spec.env[1]: 'NOEQUALS' is not of the form KEY=VALUE" in problems[0]
    assert "'300.1.1.1' is not a valid IP address" in problems[1]
    assert "192.168.0.2 is already listed at spec.hosts[0].ips[0]" in problems[2]
    assert "spec.hosts[1].taints[1]: 'gpu:Sometimes' is not a taint" in problems[3]
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


def test_schema_type_errors_and_unknown_fields(tmp_path, image):
    text = VALID.replace("roles: [node]", "roles: node\n      color: blue")
    problems = errors_of(write(tmp_path, text))
    assert any(":14:14: spec.hosts[1].roles: 'node' is not of type 'array'" in p for p in problems)
    assert any(":15:7: spec.hosts[1].color: unknown field 'color'" in p for p in problems)


def test_missing_required_field_and_wrong_api_version(tmp_path, image):
    text = VALID.replace("apiVersion: sealer.io/v2", "apiVersion: sealer.io/v1").replace(
        "  image: image\n", ""
    )
    problems = errors_of(write(tmp_path, text))
    assert any("apiVersion: 'sealer.io/v1' must be 'sealer.io/v2'" in p for p in problems)
    assert any("spec: 'image' is a required property" in p for p in problems)


def test_unknown_kind_names_the_kind_document_and_supported_kinds(tmp_path, image):
    path = write(tmp_path, VALID + "---\napiVersion: v1\nkind: Deployment\n")
    (problem,) = errors_of(path)
    assert problem.startswith(f"{path}:20:7: kind: unknown kind 'Deployment' in document 2;")
    assert "supported kinds: Cluster, Plugin, Config, Application, InitConfiguration" in problem


def test_exactly_one_cluster_document(tmp_path, image):
    (problem,) = errors_of(write(tmp_path, VALID + "---\n" + VALID))
    assert "a second Cluster document (document 2)" in problem
    plugin_only = "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: a}\nspec: {}\n"
    assert "no document of kind Cluster" in errors_of(write(tmp_path, plugin_only))[0]


def test_plugins_configs_and_kubeadm_documents_are_kept_for_kubernetes(tmp_path, image):
    extra = """\
---
apiVersion: sealer.io/v1
kind: Plugin
metadata: {name: post_install}
spec: {type: SHELL, action: post-install, scope: master, data: "kubectl get nodes"}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: calico}
spec: {path: etc/calico.yaml, strategy: merge, data: "mtu: 1440"}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
networking: {podSubnet: 100.64.0.0/10}
"""
    cluster, _ = clusterfile.load(write(tmp_path, VALID + extra), {"SSH_PASSWORD": "x"})
    assert [p.name for p in cluster.plugins] == ["post_install"]
    assert [c.name for c in cluster.configs] == ["calico"]
    assert [d.kind for d in cluster.kube_documents] == ["ClusterConfiguration"]


def test_kubeadm_documents_are_refused_for_k3s(tmp_path):
    make_image(tmp_path / "image", runtime="k3s")
    extra = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n"
    (problem,) = errors_of(write(tmp_path, VALID + extra))
    assert "InitConfiguration (document 2) only applies to the kubernetes runtime" in problem
    assert "this image runs k3s" in problem


def test_plugin_with_unknown_phase_is_an_error(tmp_path, image):
    extra = (
        "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\n"
        "spec: {type: SHELL, action: post-everything, data: x}\n"
    )
    (problem,) = errors_of(write(tmp_path, VALID + extra))
    assert "spec.action: unknown action 'post-everything'; actions: pre-init-host" in problem


def test_env_substitution_with_default_and_missing_variable(tmp_path, image):
    text = VALID.replace("user: root", "user: '${SSH_USER:-admin}'").replace(
        "PodCIDR=100.64.0.0/10", "'PodCIDR=${POD_CIDR}'"
    )
    cluster, _ = clusterfile.load(write(tmp_path, text), {"SSH_PASSWORD": "x", "POD_CIDR": "p"})
    assert cluster.hosts["192.168.0.2"].ssh.user == "admin"
    assert cluster.env["PodCIDR"] == "p"
    problems = errors_of(write(tmp_path, text), {"POD_CIDR": "p"})
    assert problems == [
        f"{tmp_path}/Clusterfile:8:45: spec.ssh.passwd: environment variable "
        "SSH_PASSWORD is not set"
    ]


def test_ranges_expand_and_bad_ranges_are_refused(tmp_path, image):
    cluster, _ = clusterfile.load(write(tmp_path, VALID), {"SSH_PASSWORD": "x"})
    assert "192.168.0.3" in cluster.hosts and "192.168.0.4" in cluster.hosts
    bad = VALID.replace("192.168.0.3-192.168.0.4", "192.168.0.9-192.168.0.4")
    assert "is not a valid range" in errors_of(write(tmp_path, bad))[0]


def test_ipv4_and_ipv6_may_not_be_mixed_but_ipv6_alone_works(tmp_path, image):
    mixed = VALID.replace("[192.168.0.5]", "['fd00::5']")
    assert "IPv4 and IPv6 addresses are mixed" in errors_of(write(tmp_path, mixed))[0]
    doc = cluster_doc(["fd00::1", "fd00:0::2"], ["fd00::a-fd00::c"])
    cluster, _ = clusterfile.load(str(write_clusterfile(tmp_path / "Clusterfile", doc)), {})
    assert cluster.masters == ["fd00::1", "fd00::2"]
    assert cluster.workers == ["fd00::a", "fd00::b", "fd00::c"]


def test_the_same_ip_in_two_roles_is_refused(tmp_path, image):
    doc = cluster_doc(["10.0.0.1"], ["10.0.0.1"])
    problems = errors_of(str(write_clusterfile(tmp_path / "Clusterfile", doc)))
    assert problems == [
        f"{tmp_path}/Clusterfile:16:7: spec.hosts[1].ips[0]: 10.0.0.1 is already "
        "listed at spec.hosts[0].ips[0]; an IP may appear only once"
    ]


def test_at_least_one_master_and_even_masters_warn(tmp_path, image):
    doc = cluster_doc(["10.0.0.1"], ["10.0.0.2"])
    doc["spec"]["hosts"][0]["roles"] = ["node"]
    problems = errors_of(str(write_clusterfile(tmp_path / "Clusterfile", doc)))
    assert "no host has the role 'master'" in problems[0]
    doc = cluster_doc(["10.0.0.1", "10.0.0.2"])
    _, warnings = clusterfile.load(str(write_clusterfile(tmp_path / "Clusterfile", doc)), {})
    assert len(warnings) == 1 and "2 masters: an even number of etcd members" in warnings[0]


@pytest.mark.parametrize(
    "taint, expected",
    [
        ("dedicated=db:NoSchedule", ("dedicated", "db", "NoSchedule", False)),
        ("gpu:NoExecute", ("gpu", "", "NoExecute", False)),
        (
            "node-role.kubernetes.io/master:NoSchedule",
            ("node-role.kubernetes.io/master", "", "NoSchedule", False),
        ),
        ("dedicated-node=x:PreferNoSchedule", ("dedicated-node", "x", "PreferNoSchedule", False)),
        ("old-", ("old", "", "", True)),
        ("my-key-", ("my-key", "", "", True)),
        ("my-key:NoSchedule-", ("my-key", "", "NoSchedule", True)),
    ],
)
def test_taints_parse_and_a_dash_in_a_key_is_not_a_removal(taint, expected):
    t = clusterfile.parse_taint(taint)
    assert (t.key, t.value, t.effect, t.remove) == expected


@pytest.mark.parametrize("taint", ["bad", "k=v", "k=v:Sometimes", ":NoSchedule", "-", "k=v:"])
def test_bad_taints_are_refused(taint):
    assert clusterfile.parse_taint(taint) is None


@pytest.mark.parametrize(
    "port, ok", [("22", True), (2222, True), ("0", False), ("ssh", False), (70000, False)]
)
def test_ssh_port_is_a_string_or_an_integer(tmp_path, image, port, ok):
    doc = cluster_doc(["10.0.0.1"])
    doc["spec"]["ssh"]["port"] = port
    path = str(write_clusterfile(tmp_path / "Clusterfile", doc))
    if ok:
        cluster, _ = clusterfile.load(path, {})
        assert cluster.hosts["10.0.0.1"].ssh.port == int(port)
    else:
        assert "is not a TCP port" in errors_of(path)[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("spec:\n\thosts: []\n", "invalid YAML"),
        ("kind: Cluster\nspec: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "document 1 is not a mapping"),
        ("", "holds no YAML document"),
        ("kind: Cluster\nspec: {}\n", "'apiVersion' is a required property"),
    ],
)
def test_broken_yaml_is_one_clear_line(tmp_path, text, message):
    problems = errors_of(write(tmp_path, text))
    assert message in problems[0] and problems[0].startswith(str(tmp_path / "Clusterfile"))


def test_tabs_are_explained(tmp_path):
    problems = errors_of(write(tmp_path, "spec:\n\thosts: []\n"))
    assert problems == [
        f"{tmp_path}/Clusterfile:2:1: invalid YAML: found character that cannot "
        "start any token (a tab; indent with spaces, not tabs)"
    ]


def test_yaml_bomb_is_refused(tmp_path):
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in "bcdefghi":
        prev = chr(ord(level) - 1)
        bomb.append(
            f"{level}: &{level} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},"
            f"*{prev},*{prev},*{prev}]"
        )
    problems = errors_of(write(tmp_path, "\n".join(bomb) + "\n"))
    assert "YAML aliases expand to more than" in problems[0]


def test_binary_and_huge_files_are_refused(tmp_path):
    path = tmp_path / "Clusterfile"
    path.write_bytes(b"\x7fELF\x00\x01\x02")
    assert errors_of(str(path)) == [f"{path}: binary data, expected YAML text"]
    path.write_bytes(b"\xff\xfe garbage")
    assert errors_of(str(path)) == [f"{path}:1: not valid UTF-8 text"]
    with open(path, "wb") as f:
        f.write(b"# " + b"x" * (17 * 1024 * 1024))
    assert "larger than 16 MiB, refused" in errors_of(str(path))[0]
    assert errors_of(str(tmp_path / "nope")) == [f"{tmp_path}/nope: no such Clusterfile"]


def test_missing_image_tells_how_to_load_it(tmp_path):
    doc = cluster_doc(["10.0.0.1"], image="kubernetes:v1.25.3")
    (problem,) = errors_of(str(write_clusterfile(tmp_path / "Clusterfile", doc)))
    assert "spec.image: image 'kubernetes:v1.25.3' is not in the local store" in problem
    assert "sealer image load PATH --name kubernetes:v1.25.3" in problem


def test_kubeadm_documents_kubeadm_would_refuse_are_said_at_their_place(tmp_path, image):
    extra = """\
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.26.1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
"""
    problems = errors_of(write(tmp_path, VALID + extra))
    text = "\n".join(problems)
    assert "kubernetesVersion 'v1.26.1' differs from the image's v1.25.3" in text
    assert "apiVersion 'kubeadm.k8s.io/v1beta4' is not read by Kubernetes v1.25.3" in text
    assert "ClusterConfiguration is given twice" in text
    assert all(p.startswith(str(tmp_path)) for p in problems)
