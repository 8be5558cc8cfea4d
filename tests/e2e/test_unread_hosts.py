"""End-to-end: a host sealer cannot read is unknown, never "matches" (issue 20). A changed host
key, a wrong password and a stopped sshd each give their own reason in plan, apply and drift;
a dead worker leaving the Clusterfile is still removed."""

from __future__ import annotations

import json

from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, api, host, ip, ssh

# kubectl accepts flow style, several documents and `kind: List`; so must the stand-in.
FLOW_MANIFEST = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alpha, namespace: default}\n"
    "data: {colour: blue}\n---\n"
    "{apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: ConfigMap, "
    "metadata: {name: beta}}, {apiVersion: v1, kind: Secret, metadata: {name: gamma}}]}\n"
)
LAUNCH = f"printf '%s' '{FLOW_MANIFEST}' > /tmp/flow.yaml && kubectl apply -f /tmp/flow.yaml"


def _write(cluster: Cluster, workers: list[int], wrong_password_for: int | None = None):
    groups = []
    if wrong_password_for:
        workers = [n for n in workers if n != wrong_password_for]
        groups.append(
            {
                "ips": [ip(wrong_password_for)],
                "roles": ["node"],
                "ssh": {"pk": "", "passwd": "not-the-password"},
            }
        )
    cluster.write([1], workers, more_groups=groups, cmd=[LAUNCH])


def test_hosts_sealer_cannot_read_are_unknown_and_block_plan_and_apply(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    _write(cluster, [2, 3, 4, 5])
    cluster.apply()
    kinds = {key.split("/")[0] for key in api(1, "/objects")}
    assert {"ConfigMap", "Secret"} <= kinds  # the flow-style manifest and its List applied
    assert {"ConfigMap/default/alpha", "ConfigMap/default/beta"} <= set(api(1, "/objects"))
    pinned = cluster.state()["hosts"][ip(2)]["host_key"]

    sandbox.regenerate_host_key(host(2))  # another machine answers at that address
    _write(cluster, [2, 3, 4, 5], wrong_password_for=3)
    sandbox.stop_sshd(host(4))

    plan = cluster.sealer("plan", "--detailed-exitcode", "--ssh-timeout", "3s")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "matches" not in plan.stdout and "No changes" not in plan.stdout
    assert f"? {ip(2)}: unknown — host key changed (the state pinned {pinned}, " in plan.stdout
    assert f"? {ip(3)}: unknown — authentication failed" in plan.stdout
    assert f"? {ip(4)}: unknown — down" in plan.stdout
    assert ip(5) not in plan.stdout.split("Sealer could not read")[1]
    assert "--refresh=false" in plan.stderr and "--target" in plan.stderr
    assert "Traceback" not in plan.stderr and "not-the-password" not in plan.stdout + plan.stderr

    as_json = cluster.sealer("plan", "--json", "--ssh-timeout", "3s")
    assert as_json.returncode == 1
    unknown = {u["host"]: u["reason"] for u in json.loads(as_json.stdout)["unknown"]}
    assert set(unknown) == {ip(2), ip(3), ip(4)}

    # apply of new workers: refused before any host is touched, naming every host to fix,
    # the new one that does not answer too
    sandbox.stop_sshd(host(7))
    _write(cluster, [2, 3, 4, 5, 6, 7], wrong_password_for=3)
    serial = cluster.state()["serial"]
    refused = cluster.sealer("apply", "--auto-approve", "--ssh-timeout", "3s")
    assert refused.returncode == 1 and "cannot plan: 3 hosts" in refused.stderr
    assert f"1 host(s) about to join did not answer either ({ip(7)})" in refused.stderr
    assert f"? {ip(4)}: unknown — down" in refused.stdout
    assert f"? {ip(7)}: about to join, no answer — " in refused.stdout
    assert ssh(6, "test -e /var/lib/sealer", check=False).returncode == 1
    assert cluster.state()["serial"] == serial

    drift = cluster.sealer("drift", "--json", "--ssh-timeout", "3s")
    assert drift.returncode == 2, drift.stderr
    found = {(f["kind"], f["host"]) for f in json.loads(drift.stdout)["drift"]}
    assert {
        ("host_key_changed", ip(2)),
        ("auth_failed", ip(3)),
        ("host_unreachable", ip(4)),
    } <= found

    # the ways around it: the recorded state, or only other hosts
    recorded = cluster.sealer("plan", "--refresh=false")
    assert recorded.returncode == 0 and f"join_worker.{ip(6)}" in recorded.stdout
    targeted = cluster.sealer("plan", "--target", ip(6), "--ssh-timeout", "3s")
    assert targeted.returncode == 0, targeted.stderr
    assert f"join_worker.{ip(6)}" in targeted.stdout

    # hosts 2 and 3 become readable again; dead host 4 leaves the Clusterfile: removed
    assert cluster.sealer("state", "forget-host-key", ip(2)).returncode == 0
    _write(cluster, [2, 3, 5])
    removed = cluster.apply("--ssh-timeout", "3s")
    assert f"{ip(4)} does not answer" in removed.stdout
    assert ip(4) not in cluster.state()["hosts"]
    assert "sandbox-4" not in api(1, "/nodes")
    again = cluster.sealer("plan", "--detailed-exitcode", "--ssh-timeout", "3s")
    assert again.returncode == 0 and "No changes." in again.stdout

    # destroy with a dead worker: the others are reset, the dead one is forgotten (noted)
    sandbox.stop_sshd(host(5))
    destroyed = cluster.sealer("destroy", "--auto-approve", "--ssh-timeout", "3s")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert f"{ip(5)} does not answer" in destroyed.stdout
    assert cluster.state()["hosts"] == {}
    assert ssh(2, "ls /var/lib/sealer/data 2>/dev/null; true").stdout == ""


def _etcd_peers(n: int) -> set[str]:
    tls = (
        "--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt "
        "--key=/etc/kubernetes/pki/etcd/server.key"
    )
    out = ssh(
        n, f"ETCDCTL_API=3 etcdctl --endpoints=https://{ip(n)}:2379 {tls} member list -w json"
    ).stdout
    return {url for m in json.loads(out)["members"] for url in m.get("peerURLs", [])}


def test_a_dead_master_leaving_is_removed_from_the_nodes_and_from_etcd(hosts, tmp_path):
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1, 2, 3], [4])
    cluster.apply()
    assert any(ip(3) in url for url in _etcd_peers(1))
    sandbox.stop_sshd(host(3))
    cluster.write([1, 2], [4])
    removed = cluster.apply("--ssh-timeout", "3s")
    assert f"{ip(3)} does not answer" in removed.stdout
    assert not any(ip(3) in url for url in _etcd_peers(1))  # quorum no longer counts it
    assert len(_etcd_peers(1)) == 2
    assert ip(3) not in cluster.state()["hosts"]
    assert {node["address"] for node in api(1, "/nodes").values()} == {ip(1), ip(2), ip(4)}
