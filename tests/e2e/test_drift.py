"""End-to-end drift detection: changes made behind sealer's back, for each runtime."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from sandbox import hosts as sandbox
from tests.e2e.conftest import IMAGES, NEW, command_log, host, ip, ssh


def drift(cluster, *extra: str):
    result = cluster.sealer("drift", "--json", "--ssh-timeout", "3s", *extra)
    assert result.returncode in (0, 2), result.stderr
    return result.returncode, json.loads(result.stdout)["drift"]


def kinds(findings, kind):
    return [f for f in findings if f["kind"] == kind]


def kubectl(cluster) -> str:
    return "k0s kubectl" if cluster.runtime == "k0s" else "kubectl"


def test_no_drift_after_apply_and_metrics_parse(cluster, tmp_path):
    cluster.write([1], [2, 3])
    cluster.apply()
    metrics = tmp_path / "sealer.prom"
    code, findings = drift(cluster, "--prometheus", str(metrics))
    assert (code, findings) == (0, [])
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    samples = {
        (s.name, s.labels.get("kind")): s.value for f in families.values() for s in f.samples
    }
    assert samples[("sealer_drift_findings", "node_missing")] == 0
    assert samples[("sealer_hosts_unreachable", None)] == 0
    assert samples[("sealer_check_success", None)] == 1
    assert samples[("sealer_last_check_timestamp_seconds", None)] > 1.7e9
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 0 and "No changes." in plan.stdout


def test_node_deleted_by_hand_is_found_and_joined_again(cluster, tmp_path):
    cluster.write([1], [2, 3])
    cluster.apply()
    ssh(1, f"{kubectl(cluster)} delete node sandbox-3")
    metrics = tmp_path / "sealer.prom"
    code, findings = drift(cluster, "--prometheus", str(metrics))
    assert code == 2
    assert kinds(findings, "node_missing") == [
        {"kind": "node_missing", "host": ip(3), "expected": "sandbox-3", "actual": None}
    ]
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for f in text_string_to_metric_families(metrics.read_text())
        for s in f.samples
    }
    assert samples[("sealer_drift_findings", "node_missing")] == 1
    plan = cluster.sealer("plan")
    assert "Note: the cluster has changed outside of sealer" in plan.stdout
    assert f"# join_worker.{ip(3)} will be created" in plan.stdout
    cluster.apply()
    assert drift(cluster) == (0, [])


def test_unreachable_host_is_a_finding_and_the_rest_is_refreshed(cluster):
    cluster.write([1], [2, 3])
    cluster.apply()
    sandbox.stop_sshd(host(3))
    ssh(1, f"{kubectl(cluster)} label node sandbox-2 team=blue --overwrite")
    code, findings = drift(cluster)
    assert code == 2
    unreachable = kinds(findings, "host_unreachable")
    assert [f["host"] for f in unreachable] == [ip(3)]
    assert kinds(findings, "labels_changed")[0]["host"] == ip(2)  # host 2 was still refreshed
    refresh_only = cluster.sealer(
        "plan", "--refresh-only", "--detailed-exitcode", "--ssh-timeout", "3s"
    )
    assert refresh_only.returncode == 2 and "host_unreachable" in refresh_only.stdout


def test_binary_replaced_by_the_other_version_is_a_version_mismatch(cluster):
    cluster.write([1], [2])
    cluster.apply()
    binary = {"kubernetes": "kubelet", "k3s": "k3s", "k0s": "k0s"}[cluster.runtime]
    other = (IMAGES / f"{cluster.runtime}-{NEW}" / "bin" / binary).read_text()
    ssh(2, f"cat > /usr/local/bin/{binary} <<'EOF'\n{other}EOF")
    code, findings = drift(cluster)
    assert code == 2
    assert {
        "kind": "version_mismatch",
        "host": ip(2),
        "expected": "v1.25.3",
        "actual": NEW,
    } in findings


def test_regenerated_host_key_is_found(cluster):
    cluster.write([1], [2])
    cluster.apply()
    old = cluster.state()["hosts"][ip(2)]["host_key"]
    sandbox.regenerate_host_key(host(2))
    code, findings = drift(cluster)
    assert code == 2
    (changed,) = kinds(findings, "host_key_changed")
    assert changed["host"] == ip(2) and changed["expected"] == old
    assert changed["actual"].startswith("SHA256:") and changed["actual"] != old


def test_node_added_by_hand_is_unexpected(cluster):
    cluster.write([1], [2])
    cluster.apply()
    # A kubelet that registers itself without sealer: the node appears in the cluster.
    ssh(
        1,
        'python3 -c "import json, urllib.request; urllib.request.urlopen(urllib.request.'
        f"Request('http://{ip(1)}:6443/nodes', data=json.dumps({{'name': 'handmade', "
        f"'address': '{ip(9)}', 'version': 'v1.25.3', 'roles': []}}).encode(), "
        "method='POST'))\"",
    )
    code, findings = drift(cluster)
    assert code == 2
    assert {
        "kind": "unexpected_node",
        "host": "handmade",
        "expected": None,
        "actual": ip(9),
    } in findings


def test_drift_honours_the_lock(cluster):
    cluster.write([1], [2])
    cluster.apply()
    state_path = cluster.state_path()
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, '.');"
            "from state.local import LocalBackend;"
            f"lock = LocalBackend({str(state_path)!r}).lock('apply'); lock.__enter__();"
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = cluster.sealer("drift")
        assert result.returncode == 1
        assert (
            "locked by another sealer run" in result.stderr and "Operation=apply" in result.stderr
        )
    finally:
        holder.kill()
        holder.wait()


def test_apply_refresh_only_accepts_drift_into_the_state_without_touching_hosts(cluster):
    cluster.write([1], [2])
    cluster.apply()
    ssh(1, f"{kubectl(cluster)} label node sandbox-2 team=blue --overwrite")

    def changes_on_host():
        return [e for e in command_log(2) if not e["read_only"]]

    before = changes_on_host()
    result = cluster.sealer("apply", "--refresh-only", "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert "Accepted 1 finding(s) into the state." in result.stdout
    assert cluster.state()["hosts"][ip(2)]["labels"] == {"team": "blue"}
    assert changes_on_host() == before  # the refresh only read
    assert drift(cluster) == (0, [])
    plan = cluster.sealer("plan")  # the Clusterfile still wants no label: put it back
    assert f"# update_host.{ip(2)} will be updated in-place" in plan.stdout
