"""The sealer fields a Clusterfile carries beyond hosts: Application, dataRoot, hostAliases,
containerRuntime, registry, cmd_args, Plugin actions and `on:`, Config processing, templates."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest
import yaml

from cluster import clusterfile, configs, plugins, templates
from cluster.errors import InputError, SealerError
from cluster.model import SSH, Host
from tests.helpers import make_image

CLUSTER = """\
apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: demo}
spec:
  image: image
  ssh: {user: root, pk: /root/.ssh/id}
  hosts:
    - ips: [10.0.0.1]
      roles: [master]
    - ips: [10.0.0.2]
      roles: [node]
      labels: {sealer-test: "true"}
"""


def load(tmp_path, extra_spec: str = "", more: str = ""):
    text = CLUSTER + textwrap.indent(textwrap.dedent(extra_spec), "  ") + more
    path = tmp_path / "Clusterfile"
    path.write_text(text)
    return clusterfile.load(str(path), {})


def problems(tmp_path, extra_spec: str = "", more: str = "") -> list[str]:
    with pytest.raises(InputError) as info:
        load(tmp_path, extra_spec, more)
    return info.value.problems


def app_image(folder, launch=("web",), **metadata):
    image = make_image(folder, **metadata)
    (image / "application/apps/web").mkdir(parents=True)
    (image / "application/apps/web/web.yaml").write_text("kind: Deployment\n")
    (image / "application/apps/web/conf.tmpl").write_text("who: {{ .who }}\n")
    data = json.loads((image / "Metadata").read_text())
    data["applications"] = [
        {"name": "web", "type": "kube", "files": ["web.yaml"], "env": {"who": "x"}}
    ]
    data["launch"] = {"app_names": list(launch), "cmds": []}
    (image / "Metadata").write_text(json.dumps(data))
    return image


def test_v2_fields_do_something(tmp_path, image):
    cluster, warnings = load(
        tmp_path,
        """\
        dataRoot: /opt/sealer
        hostAliases:
          - {ip: 10.0.0.9, hostnames: [db.internal, db]}
        containerRuntime: {type: containerd}
        registry:
          localRegistry: {ha: true, username: admin, password: s3cret}
        """,
    )
    assert cluster.control_plane["data_root"] == "/opt/sealer"
    assert cluster.hosts["10.0.0.2"].host_aliases == ("10.0.0.9 db.internal db",)
    env = cluster.hosts["10.0.0.1"].env
    assert env["ContainerRuntime"] == "containerd" and env["RegistryURL"] == "sea.hub:5000"
    assert env["LocalRegistryDomain"] == "sea.hub" and "s3cret" not in json.dumps(env)
    assert any("does not declare its container runtime" in w for w in warnings)


def test_bad_v2_fields_are_refused_at_their_place(tmp_path, image):
    found = problems(
        tmp_path,
        """\
        dataRoot: /var
        cmd_args: [x]
        hostAliases:
          - {ip: nope, hostnames: [db]}
          - {ip: 10.0.0.9, hostnames: ["bad name"]}
        registry:
          externalRegistry: {domain: "reg;rm", port: 5000}
        """,
    )
    text = "\n".join(found)
    assert "spec.dataRoot: '/var' must be at least two levels deep" in text
    assert "spec.cmd_args: sealer declares cmd_args but never reads it" in text
    assert "spec.hostAliases[0].ip: 'nope' is not an IP address" in text
    assert "spec.hostAliases[1].hostnames[0]: 'bad name'" in text
    assert "spec.registry.externalRegistry.domain: 'reg;rm'" in text


def test_container_runtime_must_be_the_images(tmp_path):
    make_image(
        tmp_path / "image", labels={"cluster.alpha.sealer.io/container-runtime-type": "docker"}
    )
    (found,) = problems(tmp_path, "containerRuntime: {type: containerd}\n")
    assert "spec.containerRuntime.type: 'containerd': image installs 'docker'" in found


def test_plugin_on_key_combined_and_legacy_actions(tmp_path, image):
    plugin = """---
apiVersion: sealer.aliyun.com/v2alpha1
kind: Plugin
metadata: {name: label-nodes}
spec:
  action: PostInstall|post-init-host
  type: SHELL
  on: sealer-test=true
  scope: master | node
  data: echo hi
"""
    cluster, warnings = load(tmp_path, more=plugin)
    (doc,) = cluster.plugins
    assert doc.body["spec"]["on"] == "sealer-test=true"  # the bare `on:` key, not True
    assert any("PostInstall is sealer 0.8's name; it runs at post-install" in w for w in warnings)
    assert plugins.actions_of(doc.body["spec"]["action"]) == ["post-install", "post-init-host"]
    from executors.plugins import plugins_for

    worker, master = cluster.hosts["10.0.0.2"], cluster.hosts["10.0.0.1"]
    assert [n for n, _ in plugins_for(cluster.plugins, "post-init-host", worker.roles, worker)] == [
        "label-nodes"
    ]
    assert list(plugins_for(cluster.plugins, "post-init-host", master.roles, master)) == []
    bad = plugin.replace("PostInstall|post-init-host", "PostInstall|Sideways").replace(
        "sealer-test=true", "a;b"
    )
    text = "\n".join(problems(tmp_path, more=bad))
    assert "spec.action: unknown action 'Sideways'" in text
    assert "spec.on: 'a;b' is not an IP" in text


@pytest.mark.parametrize(
    "selector, picks",
    [
        ("10.0.0.1-10.0.0.5", True),
        ("10.0.0.4", False),
        ("node", True),
        ("disk", True),
        ("disk=hdd", False),
    ],
)
def test_on_selector(selector, picks):
    host = Host("10.0.0.3", ("node",), {"disk": "ssd"}, (), {}, SSH())
    assert plugins.selects(selector, host) is picks


def test_config_processing_as_sealer_documents_it():
    spec = {
        "path": "etc/x",
        "process": "value|toJson|toBase64",
        "data": "config:\n  username: root\n  passwd: xxx\n",
    }
    out = yaml.safe_load(configs.written(spec, None))
    assert json.loads(base64.b64decode(out["config"])) == {"passwd": "xxx", "username": "root"}
    whole = configs.written({"path": "x", "process": "toBase64", "data": "abc"}, None)
    assert whole == base64.b64encode(b"abc").decode()
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {old: b2xk}\n"
    made = yaml.safe_load(
        configs.written({"path": "s", "process": "toSecret", "data": "pw: hunter2\n"}, secret)
    )
    assert made["data"] == {"old": "b2xk", "pw": base64.b64encode(b"hunter2").decode()}
    two = "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n"
    merged = list(
        yaml.safe_load_all(
            configs.written(
                {"path": "m", "strategy": "merge", "data": "metadata: {namespace: ns}\n"}, two
            )
        )
    )
    assert [d["metadata"] for d in merged] == [
        {"name": "a", "namespace": "ns"},
        {"name": "b", "namespace": "ns"},
    ]
    assert (
        configs.process_problem("toJson|toXml")
        == "unknown processor 'toXml'; processors: value, toJson, toBase64, toSecret"
    )
    with pytest.raises(SealerError, match="the data must be a YAML mapping"):
        configs.written({"path": "m", "strategy": "merge", "data": "- a\n"}, two)


def test_application_picks_apps_and_checks_templates(tmp_path):
    app_image(tmp_path / "image")
    cluster, _ = load(tmp_path)
    (web,) = cluster.apps
    assert web.commands == ("kubectl apply -f web.yaml",) and web.env["who"] == "x"
    application = """---
kind: Application
metadata: {name: apps}
spec:
  launchApps: [web]
  configs:
    - name: web
      env: [who=y]
      launch: {cmds: ["kubectl apply -f other.yaml"]}
"""
    cluster, _ = load(tmp_path, more=application)
    (web2,) = cluster.apps
    assert web2.commands == ("kubectl apply -f other.yaml",) and web2.env["who"] == "y"
    assert web2.digest != web.digest
    text = "\n".join(
        problems(tmp_path, more=application.replace("launchApps: [web]", "launchApps: [nope]"))
    )
    assert "spec.launchApps[0]: image has no app 'nope' (apps: web)" in text
    (tmp_path / "image/application/apps/web/conf.tmpl").write_text("{{ .missing }}\n")
    (found,) = problems(tmp_path)
    assert "app web: template conf.tmpl: .missing is not set" in found
    cmds, _ = load(tmp_path, "cmd: [echo hi]\n")  # raw commands win: no app launches
    assert cmds.cmd == ("echo hi",) and cmds.apps == ()


def test_templates_render_only_keys():
    assert templates.render("a: {{ .A }}\nb: {{.B}}\n", {"A": "1", "B": "2"}, "f") == "a: 1\nb: 2\n"
    with pytest.raises(templates.TemplateError, match=r"f: \{\{ .C \}\} has no value"):
        templates.render("{{ .C }}", {}, "f")
    with pytest.raises(templates.TemplateError, match="is not supported"):
        templates.keys("{{ range .X }}", "f")


def test_templates_never_follow_links_out_of_the_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.tmpl").write_text("{{ .X }}")
    app = tmp_path / "app"
    app.mkdir()
    (app / "linked").symlink_to(outside, target_is_directory=True)
    (app / "file.tmpl").symlink_to(outside / "secret.tmpl")
    (app / "real.tmpl").write_text("x={{ .X }}")
    assert [p.name for p in templates.templates_in(app)] == ["real.tmpl"]
    templates.render_folder(app, {"X": "1"})
    assert (app / "real").read_text() == "x=1" and (outside / "secret.tmpl").exists()
    assert not (outside / "secret").exists()


def test_an_application_image_runs_on_the_recorded_cluster_within_its_kube_version(tmp_path):
    import dataclasses

    from cluster import image as images
    from cluster.records import State
    from operations.common import on_recorded_cluster

    cluster_image = make_image(tmp_path / "cluster-image", version="v1.25.3")
    apps_folder = tmp_path / "apps-image"
    app_image(apps_folder)
    data = json.loads((apps_folder / "Metadata").read_text())
    data = {k: v for k, v in data.items() if k not in ("version", "ClusterRuntime", "kubeVersion")}
    data.update(
        type="app-installer", labels={"app.alpha.sealer.io/supported-kube-version": ">=1.26"}
    )
    (apps_folder / "Metadata").write_text(json.dumps(data))
    (tmp_path / "image").symlink_to(apps_folder)
    cluster, _ = load(tmp_path)
    assert cluster.image.is_application and cluster.apps_from == "image"

    empty = State.new("demo")
    with pytest.raises(
        SealerError, match="installs apps on a running cluster, and demo has none yet"
    ):
        on_recorded_cluster(cluster, empty)
    recorded = images.resolve(str(cluster_image), tmp_path)
    running = dataclasses.replace(
        empty, image=recorded.record(), control_plane={"data_root": "/x/y"}
    )
    with pytest.raises(
        SealerError, match=r"the apps support Kubernetes >=1.26, and the cluster runs v1.25.3"
    ):
        on_recorded_cluster(cluster, running)
    data["labels"] = {"app.alpha.sealer.io/supported-kube-version": "1.22 - 1.25"}
    (apps_folder / "Metadata").write_text(json.dumps(data))
    cluster, _ = load(tmp_path)
    on_cluster = on_recorded_cluster(cluster, running)
    assert on_cluster.image.digest == recorded.digest and on_cluster.control_plane == {
        "data_root": "/x/y"
    }
    assert [a.name for a in on_cluster.apps] == ["web"] and on_cluster.apps_from == "image"
