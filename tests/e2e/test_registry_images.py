"""End-to-end: ClusterImages from a registry applied on sandbox hosts — an image in real
sealer's format (launch only in its annotation, a whiteout in its second layer), a tag that
moves, and a multi-arch image whose instances go to the hosts of each architecture."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox import hosts as sandbox
from tests.e2e.conftest import IMAGES, Cluster, ip, ssh
from tests.helpers import sealer
from tests.image_registry import secure_registry
from tests.sealer_go_image import image_extension
from tests.test_image_transport import LAUNCH, build_two_platform_image, login, push_go_image

ROOTFS = "/var/lib/sealer/data/e2e/rootfs"


def test_an_image_real_sealer_built_is_pulled_by_apply_and_runs(hosts, tmp_path):
    with secure_registry(tmp_path / "registry") as registry:
        registry.trust_in(Path(os.environ["SEALER_HOME"]))
        login(registry)
        digest = push_go_image(tmp_path, registry)
        ref = f"{registry.address}/sealer/k3s-go:v1"
        cluster = Cluster(tmp_path, "k3s")
        cluster.write([1], [2])
        cluster.path.write_text(cluster.path.read_text().replace(str(IMAGES / "k3s-v1.25.3"), ref))
        cluster.apply()  # not in the store: apply pulls it (policy missing)
        assert cluster.state()["image"]["digest"] == digest  # the manifest's
        assert ssh(1, "cat /tmp/sealer-go-launch").stdout == "launched-from-the-extension\n"
        for n in (1, 2):
            files = ssh(n, f"ls {ROOTFS}/etc").stdout.split()
            assert "added-by-layer-2.conf" in files and "obsolete.conf" not in files
        assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0

        # The tag moves in the registry: nothing changes until the tag is pulled again, then
        # the plan shows the digest change and the apply brings it.
        moved = push_go_image(
            tmp_path / "moved", registry, extension=image_extension([LAUNCH, "echo again >> /tmp/sealer-go-launch"])
        )  # fmt: skip
        assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0
        assert sealer("pull", ref).returncode == 0
        plan = cluster.sealer("plan", "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert f"~ image = {ref} ({digest[:19]}…→{moved[:19]}…)" in plan.stdout, plan.stdout
        cluster.apply()
        assert cluster.state()["image"]["digest"] == moved


def test_a_mixed_architecture_cluster_gets_each_hosts_instance(hosts, tmp_path):
    context = tmp_path / "ctx"
    build_two_platform_image(context, "multi:v1")
    for n in (2, 3, 4):  # three arm64 workers: their instance goes through the relay
        sandbox.report_machine(f"sandbox-{n}", "aarch64")
    assert ssh(2, "uname -m").stdout.strip() == "aarch64"
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3, 4, 5])
    cluster.path.write_text(
        cluster.path.read_text().replace(str(IMAGES / "k3s-v1.25.3"), "multi:v1")
    )
    result = cluster.apply()
    assert "relay: 3 of 3 hosts got the image through the cluster" in result.stdout + result.stderr
    for n, arch in ((1, "amd64"), (2, "arm64"), (3, "arm64"), (4, "arm64"), (5, "amd64")):
        assert ssh(n, f"cat {ROOTFS}/etc/built-for").stdout == f"{arch}\n", n
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0

    # An amd64-only image for the same hosts: the refresh read the recorded hosts' machines,
    # and the plan names those it cannot run on.
    assert (
        sealer("build", "--platform", "linux/amd64", "-t", "single:v1", str(context)).returncode
        == 0
    )
    cluster.path.write_text(cluster.path.read_text().replace("multi:v1", "single:v1"))
    refused = cluster.sealer("plan")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: cannot plan: single:v1 cannot run on these hosts: "
        + "; ".join(
            f"{ip(n)}: the image has no linux/arm64 instance (it has linux/amd64)"
            for n in (2, 3, 4)
        )
    ), refused.stderr

    # A host whose architecture the image lacks: the plan names it, and nothing changes.
    sandbox.report_machine("sandbox-6", "s390x")
    cluster.write([1], [2, 3, 4, 5, 6])
    cluster.path.write_text(
        cluster.path.read_text().replace(str(IMAGES / "k3s-v1.25.3"), "multi:v1")
    )
    plan = cluster.sealer("plan")
    assert plan.returncode == 1
    assert plan.stderr.strip() == (
        f"Error: cannot plan: multi:v1 cannot run on this host: {ip(6)}: the image has no "
        "linux/s390x instance (it has linux/amd64, linux/arm64)"
    ), plan.stderr
    refused = cluster.sealer("apply", "--auto-approve")
    assert refused.returncode == 1 and "linux/s390x" in refused.stderr
    assert ssh(6, f"test -e {ROOTFS}", check=False).returncode != 0  # nothing copied there
