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


def test_disable_eviction_is_warned_before_the_approval_and_changes_nothing(tmp_path):
    make_image(tmp_path / "image", "v1.25.3")
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], ["127.0.2.11"]))
    state = tmp_path / "state.json"
    assert sealer("import", "-f", str(path), "--state", str(state)).returncode == 0
    write_clusterfile(path, cluster_doc(["127.0.2.1"], []))  # the worker leaves: a drain
    before = state.read_bytes()
    result = sealer(
        "apply", "-f", str(path), "--state", str(state), "--refresh=false", "--disable-eviction"
    )
    assert result.returncode == 1  # no TTY to approve on
    assert "PodDisruptionBudgets are ignored" in result.stderr
    assert "no TTY to ask for approval" in result.stderr
    assert state.read_bytes() == before
