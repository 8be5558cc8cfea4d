"""Container image collection at build time (a real source registry, real skopeo), the
registry's Clusterfile fields, and the registry planning rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cluster import clusterfile
from cluster import image as images
from cluster import registry as registries
from cluster.records import State, host_record
from imagebuild import containers
from planner.build import make_plan
from planner.registry import wanted
from tests.helpers import SANDBOX_IMAGES, cluster_doc, kubefile, sealer, write_clusterfile
from tests.source_registry import inspect_digest, oci_image, push, source_registry

BASE = SANDBOX_IMAGES / "k3s-v1.25.3"


# ---- finding images ----


@pytest.mark.parametrize(
    ("ref", "source", "served"),
    [
        ("nginx", "docker.io/library/nginx:latest", "library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25", "library/nginx:1.25"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7", "bitnami/redis:7"),
        ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5", "coreos/etcd:v3.5"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "a/b:c"),
        ("k8s.gcr.io/pause@sha256:" + "a" * 64, "k8s.gcr.io/pause@sha256:" + "a" * 64, None),
    ],
)
def test_references_are_read_as_docker_reads_them(ref, source, served):
    image = containers.parse(ref, "f:1")
    assert image.source == source
    if served:
        assert image.served_as == served
    else:
        assert image.served_as.startswith("pause:sha256-")


@pytest.mark.parametrize("ref", ["UPPER/case:1", "a b", "nginx:", "../etc/passwd", "x;rm -rf /"])
def test_a_bad_reference_is_refused_with_its_place(ref):
    with pytest.raises(containers.ImageRefError, match=r"^manifests/a.yaml:3: .* is not a"):
        containers.parse(ref, "manifests/a.yaml:3")


def test_images_are_found_in_manifests_apps_and_image_lists(tmp_path):
    rootfs, context = tmp_path / "rootfs", tmp_path / "ctx"
    (rootfs / "manifests").mkdir(parents=True)
    (rootfs / "application/apps/web").mkdir(parents=True)
    context.mkdir()
    (rootfs / "manifests/imageList").write_text("# comment\n\nbusybox:1.36\n")
    (rootfs / "manifests/dep.yaml").write_text(
        "spec:\n  containers:\n  - name: a\n    image: 'nginx:1.25'\n"
        '  - image: "{{ .Values.image }}"\n  - image: ${IMAGE}\n'
        "# image: commented:1\n"
    )
    (rootfs / "application/apps/web/web.yml").write_text("image: quay.io/team/web:v2  # pinned\n")
    (rootfs / "manifests/notes.txt").write_text("image: not-a-manifest:1\n")
    (context / "imageList").write_text("registry.k8s.io/pause:3.9\n")
    found = {i.source: i.where for i in containers.find(rootfs, context, print)}
    assert found == {
        "registry.k8s.io/pause:3.9": "imageList:1",
        "docker.io/library/busybox:1.36": "manifests/imageList:3",
        "docker.io/library/nginx:1.25": "manifests/dep.yaml:4",
        "quay.io/team/web:v2": "application/apps/web/web.yml:1",
    }


def test_two_sources_served_under_one_name_are_refused(tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/a.yaml").write_text("image: quay.io/x/app:1\nimage: ghcr.io/x/app:1\n")
    with pytest.raises(containers.ImageRefError, match="a.yaml:2: .* both be served as x/app:1"):
        containers.find(tmp_path, tmp_path, print)


# ---- collecting them (real registry, real skopeo) ----


def test_build_copies_the_images_with_their_digests_and_shared_layers_once(tmp_path):
    layout = tmp_path / "oci"
    shared = {"base": os.urandom(50_000)}
    oci_image(layout, "a", [shared, {"a": b"a"}])
    oci_image(layout, "b", [shared, {"b": b"b"}])
    with source_registry(tmp_path / "src") as address:
        push(layout, "a", address, "x/a:1")
        push(layout, "b", address, "x/b:1")
        digest_a = inspect_digest(f"{address}/x/a:1", "--tls-verify=false")
        context = tmp_path / "ctx"
        kubefile(context, f"FROM {BASE}\n")
        (context / "imageList").write_text(f"{address}/x/a:1\n{address}/x/b:1\n")
        result = sealer("build", "-t", "imgs:v1", str(context))
        assert result.returncode == 0, result.stderr
        again = sealer("build", "-t", "imgs:v2", str(context))  # the copy layer is cached
        assert "Using cache" in again.stdout and " -> x/a:1" not in again.stdout
    text = sealer("image", "inspect", "imgs:v1").stdout
    assert f"  x/a:1  {digest_a[:19]}  from {address}/x/a:1" in text
    inspected = json.loads(sealer("image", "inspect", "imgs:v1", "--json").stdout)
    listed = inspected["metadata"]["containerImages"]
    assert [(c["name"], c["from"]) for c in listed] == [
        ("x/a:1", "imageList:1"),
        ("x/b:1", "imageList:2"),
    ]
    assert listed[0]["digest"] == digest_a
    rootfs = Path(images.from_store("imgs:v1").rootfs)
    blobs = list((rootfs / "registry").rglob("blobs/sha256/*/*/data"))
    # 2 manifests, 2 configs, 2 own layers, 1 shared layer
    assert len(blobs) == 7


def test_a_missing_image_fails_the_build_naming_the_line_that_wanted_it(tmp_path):
    with source_registry(tmp_path / "src") as address:
        context = tmp_path / "ctx"
        kubefile(context, f"FROM {BASE}\nCOPY manifests manifests\n")
        (context / "manifests").mkdir()
        (context / "manifests/app.yaml").write_text(f"kind: Pod\nimage: {address}/no/such:1\n")
        result = sealer("build", "-t", "missing:v1", str(context))
    assert result.returncode == 1
    assert f"manifests/app.yaml:2: container image {address}/no/such:1 could not be copied" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert sealer("image", "inspect", "missing:v1").returncode != 0


# ---- the Clusterfile ----


def _load(tmp_path, **spec):
    path = write_clusterfile(
        tmp_path / "Clusterfile", cluster_doc(["10.0.0.1"], ["10.0.0.2"], image=str(BASE), **spec)
    )
    return clusterfile.load(str(path), environ={})


def test_no_images_and_no_registry_field_means_no_registry(tmp_path):
    cluster, _ = _load(tmp_path)
    assert cluster.registry is None


def test_local_registry_defaults_and_ha(tmp_path):
    cluster, _ = _load(tmp_path, registry={"localRegistry": {"ha": True, "insecure": True}})
    registry = cluster.registry
    assert (registry.endpoint, registry.scheme) == ("sea.hub:5000", "http")
    assert registry.serving_hosts(["10.0.0.1", "10.0.0.3"]) == ["10.0.0.1", "10.0.0.3"]


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ({"localRegistry": {"username": "a:b", "password": "x"}}, "username: 'a:b' is not a user"),
        ({"localRegistry": {"username": "alice"}}, "username: a username needs a password"),
        ({"localRegistry": {"domain": "bad_domain"}}, "domain: 'bad_domain'"),
        ({"externalRegistry": {"port": 5000}}, "externalRegistry needs a domain"),
    ],
)
def test_bad_registry_fields_are_refused_at_their_place(tmp_path, registry, message):
    with pytest.raises(clusterfile.SealerError, match=message) as caught:
        _load(tmp_path, registry=registry)
    assert "Clusterfile:" in str(caught.value)


def test_the_password_is_in_no_record_and_no_plan(tmp_path):
    password = "Pw-not-in-records"
    spec = {"localRegistry": {"username": "alice", "password": password}}
    cluster, _ = _load(tmp_path, registry=spec)
    plan = make_plan(cluster, State.new("test"))
    assert password not in json.dumps(plan.to_json())
    served, client = wanted(cluster, "lineage-1")
    assert password not in json.dumps([served, client])
    assert repr(cluster.registry).count(password) == 0


# ---- planning ----


def _running(cluster, lineage: str, **fields) -> State:
    state = State.new(cluster.name)
    hosts = {
        ip: host_record(h, lineage=state.lineage, version=cluster.image.version, status="ready")
        for ip, h in cluster.hosts.items()
    }
    served, client = wanted(cluster, state.lineage)
    hosts = {
        ip: r.with_fields(registry=client.get(ip, ""), registry_served=served.get(ip, ""))
        for ip, r in hosts.items()
    }
    return State(
        cluster=cluster.name,
        lineage=state.lineage,
        serial=3,
        image=cluster.image.record(),
        bootstrap_master=cluster.masters[0],
        hosts=hosts,
        **fields,
    )


def test_new_hosts_set_the_registry_up_in_their_join_and_nothing_else_is_planned(tmp_path):
    cluster, _ = _load(tmp_path, registry={"localRegistry": {}})
    plan = make_plan(cluster, State.new("test"))
    details = {a.id: a.details.get("registry") for a in plan.actions}
    assert details == {
        "init_cluster.10.0.0.1": "serves sea.hub:5000",
        "join_worker.10.0.0.2": "uses sea.hub:5000",
    }
    assert make_plan(cluster, _running(cluster, "x")).actions == ()


def test_a_new_password_serves_and_configures_again_ha_adds_serving_masters(tmp_path):
    before, _ = _load(tmp_path, registry={"localRegistry": {"username": "a", "password": "one"}})
    state = _running(before, "x")
    after, _ = _load(tmp_path, registry={"localRegistry": {"username": "a", "password": "two"}})
    kinds = sorted(a.id for a in make_plan(after, state).actions)
    assert kinds == [
        "configure_registry.10.0.0.1",
        "configure_registry.10.0.0.2",
        "serve_registry.10.0.0.1",
    ]
    dropped, _ = _load(tmp_path)  # no registry any more (and no registry env: update_host)
    ids = sorted(a.id for a in make_plan(dropped, state).actions if "registry" in a.kind)
    assert ids == [
        "configure_registry.10.0.0.1",
        "configure_registry.10.0.0.2",
        "stop_registry.10.0.0.1",
    ]


def test_image_metadata_with_a_hostile_container_image_name_is_refused(tmp_path):
    rootfs = tmp_path / "img"
    rootfs.mkdir()
    metadata = json.loads((BASE / "Metadata").read_text())
    metadata["containerImages"] = [
        {"name": "x/$(reboot):1", "source": "a.io/x", "digest": "sha256:" + "0" * 64}
    ]
    (rootfs / "Metadata").write_text(json.dumps(metadata))
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["10.0.0.1"], image=str(rootfs)))
    with pytest.raises(clusterfile.SealerError, match=r"containerImages\[0\] must have a name"):
        clusterfile.load(str(path), environ={})


def test_registries_yaml_for_k3s_names_the_mirrors(tmp_path):
    from executors.registry import _k3s_registries

    registry = registries.Registry(
        registries.LOCAL, "sea.hub", 5000, username="u", password="p", mirrored=("docker.io",)
    )
    document = yaml.safe_load(_k3s_registries(registry, "/ca.crt"))
    assert document["mirrors"]["docker.io"] == {"endpoint": ["https://sea.hub:5000"]}
    assert document["configs"]["sea.hub:5000"]["tls"] == {"ca_file": "/ca.crt"}


def test_lite_mode_and_the_ignored_list_copy_nothing_they_name(tmp_path):
    context = tmp_path / "ctx"
    kubefile(context, f"FROM {BASE}\n")
    (context / "imageList").write_text("unreachable.example/x/a:1\nunreachable.example/x/b:1\n")
    lite = sealer("build", "--build-mode", "lite", "-t", "lite:v1", str(context))
    assert lite.returncode == 0 and "2 container images not copied" in lite.stdout
    ignored = tmp_path / "ignored"
    ignored.write_text("# not these\nunreachable.example/x/a:1\nunreachable.example/x/b:1\n")
    skipped = sealer("build", "--ignored-image-list", str(ignored), "-t", "ign:v1", str(context))
    assert skipped.returncode == 0, skipped.stderr
    assert "containerImages" not in json.dumps(
        json.loads(sealer("image", "inspect", "ign:v1", "--json").stdout)["metadata"]
    )


def test_a_linked_manifests_folder_is_not_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("image: leaked/secret:1\n")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "manifests").symlink_to(outside)
    assert containers.find(rootfs, tmp_path / "ctx", print) == []


def test_an_external_registry_gets_no_hosts_line_no_ca_and_the_credentials(tmp_path):
    from executors.registry import KUBELET_AUTH, client_files, hosts_lines

    cluster, _ = _load(
        tmp_path,
        registry={
            "externalRegistry": {"domain": "reg.example.com", "username": "u", "password": "pw"}
        },
    )
    registry = cluster.registry
    assert registry.kind == registries.EXTERNAL and registry.endpoint == "reg.example.com"
    assert registry.serving_hosts(["10.0.0.1"]) == []
    assert hosts_lines(registry, [], "10.0.0.1") == []
    files = client_files(registry, "kubernetes", "test")
    assert not any(path.endswith("ca.crt") for path in files)
    toml = files["/etc/containerd/certs.d/reg.example.com/hosts.toml"][0].decode()
    assert 'server = "https://reg.example.com"' in toml
    content, mode = files[KUBELET_AUTH]
    assert mode == 0o600 and json.loads(content)["auths"]["reg.example.com"]["auth"]
    plan = make_plan(cluster, State.new("test"))
    assert {a.details.get("registry") for a in plan.actions} == {"uses reg.example.com"}


def test_platform_picks_the_variant_of_a_multi_arch_image(tmp_path):
    from tests.source_registry import multi_arch_image

    digests = multi_arch_image(tmp_path / "oci", "multi", ("amd64", "arm64"))
    with source_registry(tmp_path / "src") as address:
        push(tmp_path / "oci", "multi", address, "x/multi:1")
        context = tmp_path / "ctx"
        (context / "app").mkdir(parents=True)
        (context / "app" / "pod.yaml").write_text(f"kind: Pod\nimage: {address}/x/multi:1\n")
        kubefile(context, "FROM scratch\nAPP app local://app\n")
        arm = sealer("build", "--platform", "linux/arm64", "-t", "arm:v1", str(context))
        assert arm.returncode == 0, arm.stderr
        assert "for linux/arm64" in arm.stdout
        kubefile(context, f"FROM {BASE}\nAPP app local://app\n")
        wrong = sealer("build", "--platform", "linux/arm64", "-t", "bad:v1", str(context))
    metadata = json.loads(sealer("image", "inspect", "arm:v1", "--json").stdout)["metadata"]
    assert metadata["arch"] == "arm64"
    assert metadata["containerImages"][0]["digest"] == digests["arm64"] != digests["amd64"]
    assert wrong.returncode == 1
    assert "--platform linux/arm64, but the base image" in wrong.stderr and "amd64" in wrong.stderr
    bad = sealer("build", "--platform", "arm64", "-t", "bad:v1", str(context))
    assert bad.returncode == 1 and "expected linux/ARCH[/VARIANT]" in bad.stderr


def test_turning_ha_on_serves_from_every_master_and_moves_every_host(tmp_path):
    def load(ha: bool):
        path = write_clusterfile(
            tmp_path / "Clusterfile",
            cluster_doc(
                ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                ["10.0.0.4"],
                image=str(BASE),
                registry={"localRegistry": {"ha": ha}},
            ),
        )
        return clusterfile.load(str(path), environ={})[0]

    single = load(False)
    state = _running(single, "x")
    assert [ip for ip, r in state.hosts.items() if r.registry_served] == ["10.0.0.1"]
    actions = {a.id: a for a in make_plan(load(True), state).actions}
    assert sorted(i for i in actions if i.startswith("serve_")) == [
        "serve_registry.10.0.0.2",
        "serve_registry.10.0.0.3",
    ]
    configure = [a for i, a in actions.items() if i.startswith("configure_")]
    assert len(configure) == 4  # every host: its hosts lines name three masters now
    assert all(set(a.depends_on) >= {"serve_registry.10.0.0.2"} for a in configure)
    # And back: the two stop serving, every host is pointed at the first master again.
    back = {a.id for a in make_plan(single, _running(load(True), "x")).actions}
    assert {"stop_registry.10.0.0.2", "stop_registry.10.0.0.3"} <= back


def test_an_upgrade_waits_for_the_registry_to_serve_the_new_versions_images(tmp_path):
    def load(version: str):
        image = SANDBOX_IMAGES / f"kubernetes-{version}"
        path = write_clusterfile(
            tmp_path / "Clusterfile", cluster_doc(["10.0.0.1"], ["10.0.0.2"], image=str(image))
        )
        return clusterfile.load(str(path), environ={})[0]

    old, new = load("v1.25.3"), load("v1.26.1")
    assert old.registry and {c["name"] for c in new.image.container_images} >= {
        "kube-apiserver:v1.26.1"
    }
    actions = {a.id: a for a in make_plan(new, _running(old, "x")).actions}
    serve = actions["serve_registry.10.0.0.1"]
    assert serve.depends_on == ()  # the registry program of the rootfs the host has
    upgrades = [a for i, a in actions.items() if i.startswith("upgrade_")]
    assert upgrades and all(serve.id in a.depends_on for a in upgrades)
