"""Drain controls: kubectl drain's flags from the policy, and a timeout that cannot work."""

from __future__ import annotations

from cluster.model import DrainPolicy
from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile


def test_the_policy_is_kubectl_drains_own_flags():
    assert DrainPolicy().kubectl_args() == [
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=300s",
    ]
    args = DrainPolicy(timeout=2.5, force=True, disable_eviction=True).kubectl_args()
    assert args[2:] == ["--timeout=2.5s", "--force", "--disable-eviction"]


def test_a_drain_timeout_longer_than_the_command_timeout_is_refused_before_any_host(tmp_path):
    make_image(tmp_path / "image", "v1.25.3")
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], ["127.0.2.11"]))
    state = tmp_path / "state.json"
    assert sealer("import", "-f", str(path), "--state", str(state)).returncode == 0
    write_clusterfile(path, cluster_doc(["127.0.2.1"], []))  # the worker leaves: a drain
    before = state.read_bytes()
    result = sealer(
        "apply",
        "-f",
        str(path),
        "--state",
        str(state),
        "--refresh=false",
        "--auto-approve",
        "--drain-timeout",
        "20m",
        "--command-timeout",
        "10m",
    )
    assert result.returncode == 1
    assert "--drain-timeout 1200s must be shorter than --command-timeout 600s" in result.stderr
    assert state.read_bytes() == before
