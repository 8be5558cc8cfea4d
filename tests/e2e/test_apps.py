"""End-to-end: an application image (a kube app and a helm app) run on a running cluster,
a changed app launched again alone, an Application overriding an app's env and files, and a
template rendered with the app's env."""

from __future__ import annotations

import json

import yaml

from tests.e2e.conftest import Cluster, api, ip, ssh
from tests.helpers import sealer

APPS_KUBEFILE = """FROM scratch
ENV team=platform
APP web local://web
APP db local://chart/
APPENV db replicas=1
KUBEVERSION >=1.22 <1.30
LAUNCH ["web", "db"]
"""


def _context(folder, web_replicas: int):
    (folder / "web").mkdir(parents=True, exist_ok=True)
    (folder / "web" / "deploy.yaml").write_text(
        yaml.safe_dump(
            {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": web_replicas}}
        )
    )
    chart = folder / "chart"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: db\nversion: 1.2.0\n")
    (chart / "values.yaml").write_text("replicas: 1\nauth: {user: app}\n")
    (chart / "templates" / "sts.yaml").write_text("kind: StatefulSet\n")
    (folder / "Kubefile").write_text(APPS_KUBEFILE)


def _build(folder, tag="apps:v1"):
    result = sealer("build", "-t", tag, str(folder), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _objects():
    return api(1, "/objects")


def _release(name: str) -> dict:
    secrets = [
        json.loads(o["manifest"])["release"]
        for key, o in _objects().items()
        if key.startswith(f"Secret/default/sh.helm.release.v1.{name}.v")
    ]
    return max(secrets, key=lambda r: r["revision"])


def test_an_app_image_runs_on_the_cluster_and_a_changed_app_launches_alone(hosts, tmp_path):
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2])
    cluster.apply()
    context = tmp_path / "ctx"
    _context(context, web_replicas=1)
    _build(context)

    ran = sealer("run", "apps:v1", "-f", str(cluster.path), timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "launch_app.web" in ran.stdout and "launch_app.db" in ran.stdout
    assert "Deployment/default/web" in _objects()
    assert _release("db")["chart"] == "db-1.2.0" and _release("db")["revision"] == 1
    shown = cluster.sealer("show").stdout
    assert "web " in shown and "apps:v1" in shown  # sealer show lists the launched apps
    apps = cluster.state()["apps"]
    assert set(apps) == {"web", "db"} and apps["web"]["image"] == "apps:v1"
    folder = "/var/lib/sealer/data/e2e/rootfs/application/apps"
    assert "kind: StatefulSet" in ssh(1, f"cat {folder}/db/templates/sts.yaml").stdout
    # the helm stand-in answers as helm does, and refuses what helm refuses
    chart = f"{folder}/db"
    listed = ssh(1, "helm list -o json").stdout
    assert [r["name"] for r in json.loads(listed)] == ["db"]
    again = ssh(1, f"helm install db {chart}", check=False)
    assert again.returncode == 1 and "cannot re-use a name that is still in use" in again.stderr
    bogus = ssh(1, f"helm install other {chart} --no-such-flag", check=False)
    assert bogus.returncode == 1 and "unknown flag: --no-such-flag" in bogus.stderr
    remote = ssh(1, "helm install other bitnami/nginx", check=False)
    assert remote.returncode == 1 and "repo bitnami not found" in remote.stderr
    upper = ssh(1, f"helm install Other {chart}", check=False)
    assert upper.returncode == 1 and "invalid release name" in upper.stderr
    derived = ran.stdout.split("Wrote ")[1].split(" ")[0]
    again = sealer("plan", "-f", derived, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr  # nothing changed: no launch

    _context(context, web_replicas=3)  # the kube app changes; the chart does not
    _build(context)
    plan = sealer("plan", "-f", derived, "--detailed-exitcode")
    assert plan.returncode == 2 and "launch_app.web" in plan.stdout, plan.stdout
    assert "launch_app.db" not in plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout
    assert sealer("apply", "-f", derived, "--auto-approve").returncode == 0
    assert "replicas: 3" in _objects()["Deployment/default/web"]["manifest"]
    assert _release("db")["revision"] == 1  # not launched again

    # the cluster's own Clusterfile still plans nothing: the app image's apps are its own
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0
    # an app left out of --apps is forgotten by the state
    only_web = sealer("run", "apps:v1", "-f", str(cluster.path), "--apps", "web", timeout=300)
    assert only_web.returncode == 0, only_web.stdout + only_web.stderr
    assert "remove_app.db" in only_web.stdout and set(cluster.state()["apps"]) == {"web"}


def test_an_application_overrides_env_and_files_and_templates_render(hosts, tmp_path):
    context = tmp_path / "ctx"
    (context / "nginx").mkdir(parents=True)
    (context / "nginx" / "nginx.yaml.tmpl").write_text(
        "kind: Deployment\nmetadata: {name: nginx}\nspec:\n  image: {{ .ImageName }}\n"
        "  team: {{ .team }}\n"
    )
    (context / "nginx" / "cm.yaml").write_text(
        "kind: ConfigMap\nmetadata: {name: one}\ndata: {a: '1'}\n---\n"
        "kind: ConfigMap\nmetadata: {name: two}\ndata: {b: '2'}\n"
    )
    (context / "Kubefile").write_text(
        "FROM scratch\nENV team=platform\nAPP app1 local://nginx\n"
        "APPENV app1 ImageName=nginx:1.0\n"
        'APPCMDS app1 ["kubectl apply -f nginx.yaml && kubectl apply -f cm.yaml"]\n'
        'LAUNCH ["app1"]\n'
    )
    _build(context, "nginx-app:v1")
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [])
    cluster.apply()
    application = {
        "apiVersion": "sealer.io/v2",
        "kind": "Application",
        "metadata": {"name": "my-apps"},
        "spec": {
            "launchApps": ["app1"],
            "configs": [
                {
                    "name": "app1",
                    "env": ["ImageName=nginx:2.0"],
                    "files": [
                        {
                            "path": "cm.yaml",
                            "strategy": "merge",
                            "data": "metadata: {namespace: apps}\ndata: {c: '3'}\n",
                        },
                        {"path": "extra.txt", "strategy": "overwrite", "data": "hello\n"},
                    ],
                }
            ],
        },
    }
    doc = yaml.safe_load(cluster.path.read_text())
    doc["spec"]["image"] = "nginx-app:v1"
    apps_file = tmp_path / "Clusterfile.apps"
    apps_file.write_text(yaml.safe_dump_all([application, doc], sort_keys=False))
    result = sealer("apply", "-f", str(apps_file), "--auto-approve", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    deployment = _objects()["Deployment/default/nginx"]["manifest"]
    assert "image: nginx:2.0" in deployment and "team: platform" in deployment
    objects = _objects()
    assert "ConfigMap/apps/one" in objects and "ConfigMap/apps/two" in objects
    assert "c: '3'" in objects["ConfigMap/apps/two"]["manifest"]
    folder = "/var/lib/sealer/data/e2e/rootfs/application/apps/app1"
    listing = ssh(1, f"ls {folder}").stdout.split()
    assert "nginx.yaml" in listing and "nginx.yaml.tmpl" not in listing
    assert ssh(1, f"cat {folder}/extra.txt").stdout == "hello\n"

    # raw commands replace the apps: app1 stops being launched and its delete commands run
    application["spec"] = {
        "cmds": ["echo raw"],
        "configs": [{"name": "app1", "delete": {"cmds": ["pwd > /root/app1-deleted"]}}],
    }
    apps_file.write_text(yaml.safe_dump_all([application, doc], sort_keys=False))
    dropped = sealer("apply", "-f", str(apps_file), "--auto-approve", timeout=300)
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert "remove_app.app1" in dropped.stdout and "launch_apps" in dropped.stdout
    assert ssh(1, "cat /root/app1-deleted").stdout.strip() == folder
    assert ssh(1, f"test -e {folder}", check=False).returncode != 0
    assert "app1" not in cluster.state()["apps"]

    # a template naming a value nobody sets is refused at plan time, naming it and the file
    application["spec"] = {"launchApps": ["app1"]}
    (context / "nginx" / "nginx.yaml.tmpl").write_text("image: {{ .Missing }}\n")
    _build(context, "nginx-app:v1")
    apps_file.write_text(yaml.safe_dump_all([application, doc], sort_keys=False))
    refused = sealer("plan", "-f", str(apps_file))
    assert refused.returncode == 1
    assert "app app1: template nginx.yaml.tmpl: .Missing is not set" in refused.stderr


def test_host_aliases_on_every_host_drift_after_a_hand_edit_and_data_root(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k0s")
    aliases = [{"ip": "198.18.0.10", "hostnames": ["db.internal", "db"]}]
    cluster.write([1], [2], hostAliases=aliases, dataRoot="/opt/sealer-data")
    cluster.apply()
    for n in (1, 2):
        hosts_file = ssh(n, "cat /etc/hosts").stdout
        assert "198.18.0.10 db.internal db # sealer: hostAliases" in hosts_file
        assert (
            ssh(n, "test -x /opt/sealer-data/e2e/rootfs/scripts/init.sh", check=False).returncode
            == 0
        )
        assert ssh(n, "test -e /var/lib/sealer/data/e2e", check=False).returncode != 0
    assert cluster.sealer("drift").returncode == 0

    ssh(2, "sed -i 's/^198.18.0.10 db.internal db/198.18.0.11 db.internal db/' /etc/hosts")
    drift = cluster.sealer("drift", "--json")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    (finding,) = json.loads(drift.stdout)["drift"]
    assert finding["kind"] == "host_aliases_changed" and finding["host"] == ip(2)
    assert finding["actual"] == ["198.18.0.11 db.internal db"]
    repaired = cluster.apply()
    assert "update_host" in repaired.stdout
    assert "198.18.0.10 db.internal db" in ssh(2, "cat /etc/hosts").stdout
    assert cluster.sealer("drift").returncode == 0

    # a running cluster keeps its rootfs where it is
    cluster.write([1], [2], hostAliases=aliases, dataRoot="/srv/elsewhere")
    moved = cluster.sealer("plan")
    assert moved.returncode == 1 and "cannot change data_root" in moved.stderr

    cluster.write([1], [2], dataRoot="/opt/sealer-data")  # aliases dropped: lines removed
    cluster.apply()
    assert "sealer: hostAliases" not in ssh(1, "cat /etc/hosts").stdout


def test_rootfs_templates_render_per_host_with_its_env(hosts, tmp_path):
    from tests.e2e.conftest import IMAGES

    context = tmp_path / "ctx"
    (context / "etc").mkdir(parents=True)
    (context / "etc" / "node.conf.tmpl").write_text(
        "device={{ .StorageDevice }}\nregion={{ .Region }}\ntoken={{ .Token | b64enc }}\n"
    )
    (context / "web.yaml").write_text("kind: Deployment\nmetadata: {name: web}\n")
    (context / "Kubefile").write_text(
        f"FROM {IMAGES / 'k3s-v1.25.3'}\nENV Region=eu\nCOPY etc/node.conf.tmpl etc/\n"
        'APP web local://web.yaml\nLAUNCH ["web"]\n'
    )
    _build(context, "templated:v1")
    cluster = Cluster(tmp_path, "k3s")
    cluster.write(
        [1],
        [2],
        env=["StorageDevice=/dev/vdc", "Token=abc"],
        worker_extra={"env": ["StorageDevice=/dev/vde"]},
    )
    doc = yaml.safe_load(cluster.path.read_text())
    doc["spec"]["image"] = "templated:v1"
    cluster.path.write_text(yaml.safe_dump(doc))
    first = cluster.apply()
    assert "launch_app.web" in first.stdout  # a cluster image that launches an app
    assert "Deployment/default/web" in _objects()
    conf = "/var/lib/sealer/data/e2e/rootfs/etc/node.conf"
    assert ssh(1, f"cat {conf}").stdout == "device=/dev/vdc\nregion=eu\ntoken=YWJj\n"
    assert ssh(2, f"cat {conf}").stdout.startswith("device=/dev/vde\nregion=eu\n")
    assert ssh(2, f"test -e {conf}.tmpl", check=False).returncode != 0

    doc["spec"]["hosts"][1]["env"] = ["StorageDevice=/dev/vdf"]  # the env changes: rendered again
    cluster.path.write_text(yaml.safe_dump(doc))
    cluster.apply()
    assert ssh(2, f"cat {conf}").stdout.startswith("device=/dev/vdf\n")

    doc["spec"]["env"] = ["Token=abc"]  # the master now lacks StorageDevice: refused at plan
    cluster.path.write_text(yaml.safe_dump(doc))
    refused = cluster.sealer("plan")
    assert refused.returncode == 1
    assert "template etc/node.conf.tmpl: .StorageDevice is not set for " in refused.stderr
