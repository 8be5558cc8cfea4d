"""End-to-end: a built image's CMD, rebuilt payloads and changed Config documents rolling out."""

from __future__ import annotations

from tests.e2e.conftest import IMAGES, Cluster, api, ip, ssh
from tests.helpers import sealer

KUBEFILE = f"""FROM {IMAGES / "kubernetes-v1.25.3"}
ARG REPLICAS
COPY dashboard.yaml manifests/
RUN sed -i "s/replicas: 1/replicas: $REPLICAS/" manifests/dashboard.yaml
CMD kubectl apply -f manifests/dashboard.yaml
"""
MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: dashboard
  namespace: kube-system
spec:
  replicas: 1
"""


def test_built_image_runs_its_cmd_and_a_rebuild_rolls_out(hosts, tmp_path):
    context = tmp_path / "app"
    context.mkdir()
    (context / "Kubefile").write_text(KUBEFILE)
    (context / "dashboard.yaml").write_text(MANIFEST)

    def build(replicas: int) -> None:
        result = sealer(
            "build",
            "-t",
            "dashboard:v1",
            "--build-arg",
            f"REPLICAS={replicas}",
            str(context),
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def deployed() -> str:
        return api(1, "/objects")["Deployment/kube-system/dashboard"]["manifest"]

    build(2)
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2])
    cluster.path.write_text(
        cluster.path.read_text().replace(str(IMAGES / "kubernetes-v1.25.3"), "dashboard:v1")
    )
    first = cluster.apply()
    assert "launch_apps" in first.stdout
    assert "replicas: 2" in deployed()  # the CMD ran on the bootstrap master
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0

    build(3)  # same tag and version, new payload
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 2
    for action in (f"sync_rootfs.{ip(1)}", f"sync_rootfs.{ip(2)}", f"launch_apps.{ip(1)}"):
        assert action in plan.stdout, plan.stdout
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in plan.stdout
    cluster.apply()
    assert "replicas: 3" in deployed()
    rootfs = "/var/lib/sealer/data/e2e/rootfs/manifests/dashboard.yaml"
    for n in (1, 2):
        assert "replicas: 3" in ssh(n, f"cat {rootfs}").stdout
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0


def test_config_documents_are_rendered_into_the_rootfs_and_a_change_rolls_out(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")

    def write(data: str) -> None:
        cluster.write([1], [2])
        config = (
            "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: app}\n"
            f"spec: {{path: etc/app.yaml, data: '{data}'}}\n"
        )
        cluster.path.write_text(cluster.path.read_text() + config)

    rendered = "/var/lib/sealer/data/e2e/rootfs/etc/app.yaml"
    write("replicas: 1")
    cluster.apply()
    assert ssh(2, f"cat {rendered}").stdout.strip() == "replicas: 1"
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0

    write("replicas: 4")  # only the Config changed
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 2 and f"sync_rootfs.{ip(2)}" in plan.stdout, plan.stdout
    cluster.apply()
    for n in (1, 2):
        assert ssh(n, f"cat {rendered}").stdout.strip() == "replicas: 4"
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0
