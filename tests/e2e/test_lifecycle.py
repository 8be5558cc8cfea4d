"""End-to-end: the cluster lifecycle on real SSH hosts, for kubernetes, k3s and k0s.

The letters follow the apply issue: (a) init, (b) scale, (c) replace a master, (d) upgrade,
(e) no-op re-apply, (f) a host down mid-apply, (g) destroy.
"""

from __future__ import annotations

import json
import time

from sandbox import hosts as sandbox
from tests.e2e.conftest import (
    IMAGES,
    NEW,
    OLD,
    api,
    command_log,
    host,
    ip,
    node_versions,
    ssh,
)
from tests.helpers import sealer

# Stand-in commands that change a host, as opposed to cluster API calls made from the bootstrap
# master (kubectl, token creation) or read-only queries.
HOST_CHANGING = (
    "kubeadm init ",
    "kubeadm join",
    "kubeadm reset",
    "kubeadm upgrade",
    "systemctl",
    "k3s server",
    "k3s agent",
    "k0s install",
    "k0s start",
    "k0s stop",
    "k0s reset",
    "k0s etcd leave",
)


def names(*numbers: int) -> set[str]:
    return {f"sandbox-{n}" for n in numbers}


def is_host_changing(entry: dict) -> bool:
    line = " ".join(entry["argv"])
    return line.startswith(HOST_CHANGING)


def is_join(entry: dict) -> bool:
    line = " ".join(entry["argv"])
    if line == "systemctl enable --now containerd":  # the image's init.sh: the runtime
        return False
    return line.startswith(("kubeadm join", "systemctl enable --now", "k0s install"))


def test_a_init_three_masters_two_workers(cluster):
    cluster.write([1, 2, 3], [4, 5])
    result = cluster.apply()
    assert "Apply complete! Resources: 5 added, 0 changed, 0 destroyed." in result.stdout
    nodes = json.loads(
        ssh(
            2, f"{'k0s kubectl' if cluster.runtime == 'k0s' else 'kubectl'} get nodes -o json"
        ).stdout
    )["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    addresses = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in nodes}
    if cluster.runtime == "k0s":  # controllers are etcd members, not nodes
        assert ready == names(4, 5)
        members = json.loads(ssh(1, "k0s etcd member-list").stdout)["members"]
        assert set(members) == names(1, 2, 3)
    else:
        assert ready == names(1, 2, 3, 4, 5)
        assert set(api(1, "/etcd")) == names(1, 2, 3)
    assert all(addresses[f"sandbox-{n}"] == ip(n) for n in (4, 5))
    for master in (1, 2, 3):  # kubectl works for root on every master, no extra environment
        assert "sandbox-4" in ssh(master, "kubectl get nodes").stdout
    state = cluster.state()
    assert set(state["hosts"]) == {ip(n) for n in (1, 2, 3, 4, 5)}
    assert state["bootstrap_master"] == ip(1) and state["image"]["version"] == OLD
    # The joins waited on one shared node watch on the bootstrap master, which ended with them.
    watches = [e for e in command_log(1) if "--watch" in e["argv"]]
    assert watches, "no kubectl watch ran on the bootstrap master"
    assert wait_until(lambda: "--watch" not in processes(1)), processes(1)
    assert all(h["host_key"].startswith("SHA256:") for h in state["hosts"].values())


def processes(n: int) -> str:
    return sandbox.run_in(host(n), ["ps", "-eo", "args"]).stdout


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_b_scaling_touches_only_the_hosts_that_change(cluster):
    cluster.write([1], [2, 3, 4])
    cluster.apply()
    before = {n: len(command_log(n)) for n in range(1, 8)}
    cluster.write([1], [2, 3, 5])  # 4 leaves, 5 joins
    result = cluster.apply("--refresh=false")  # no refresh: not even a read on other hosts
    assert "1 added, 0 changed, 1 destroyed" in result.stdout
    new = {n: command_log(n)[before[n] :] for n in range(1, 8)}
    assert new[4] and new[5]
    assert new[2] == [] and new[3] == [] and new[6] == [] and new[7] == []
    # The bootstrap master only answers cluster API calls (token, drain, delete node).
    assert not [e for e in new[1] if is_host_changing(e)], new[1]
    assert set(node_versions(1)) >= names(2, 3, 5) and "sandbox-4" not in node_versions(1)
    assert ssh(4, f"test -e /var/lib/sealer/data/{cluster.name}", check=False).returncode == 1


def test_c_replace_a_master_keeps_quorum(cluster):
    cluster.write([1, 2, 3], [4])
    cluster.apply()
    start = len(api(1, "/history"))
    cluster.write([1, 2, 5], [4])  # 5 joins, then 3 leaves
    cluster.apply()
    history = api(1, "/history")[start:]
    assert history, "the control plane saw no membership change"
    assert min(len(event["etcd_members"]) for event in history) >= 2
    assert set(api(1, "/etcd")) == names(1, 2, 5)
    added = next(i for i, e in enumerate(history) if e["event"] == "etcd_member_added")
    removed = next(i for i, e in enumerate(history) if e["event"] == "etcd_member_removed")
    assert added < removed  # the new master joined before the old one left
    assert set(cluster.state()["hosts"]) == {ip(n) for n in (1, 2, 4, 5)}


def test_d_upgrade_masters_one_at_a_time_then_worker_batches(cluster):
    cluster.write([1, 2, 3], [4, 5, 6, 7])
    cluster.apply()
    start = len(api(1, "/history"))
    cluster.write([1, 2, 3], [4, 5, 6, 7], version=NEW)
    result = cluster.apply("--max-unavailable", "2")
    # kubernetes: and the registry, which serves the new version's control-plane images
    # before kubeadm pulls them
    changed = 8 if cluster.runtime == "kubernetes" else 7
    assert f"0 added, {changed} changed, 0 destroyed" in result.stdout
    if cluster.runtime == "kubernetes":
        out = result.stdout
        assert out.index(f"serve_registry.{ip(1)}: done") < out.index(
            f"upgrade_master.{ip(1)}: start"
        )
    history = api(1, "/history")[start:]
    workers = names(4, 5, 6, 7)
    assert max(len(set(e["cordoned"]) & workers) for e in history) <= 2
    assert max(len(set(e["cordoned"]) - workers) for e in history) <= 1  # masters: one at a time
    if cluster.runtime == "k0s":
        assert set(node_versions(1).values()) == {NEW}
        for controller in (1, 2, 3):
            assert ssh(controller, "k0s version").stdout.startswith(NEW)
    else:
        assert node_versions(1) == {name: NEW for name in names(1, 2, 3, 4, 5, 6, 7)}
    if cluster.runtime != "k0s":  # the first cordon of the upgrade is a master's
        first = next(e for e in history if e["event"] in ("cordon", "drain"))
        assert first["node"] in names(1, 2, 3)
    state = cluster.state()
    assert {h["version"] for h in state["hosts"].values()} == {NEW}
    assert state["image"]["version"] == NEW


def test_e_reapply_without_change_runs_nothing(cluster):
    cluster.write([1], [2])
    cluster.apply()

    def changes():
        return {n: [e for e in command_log(n) if not e["read_only"]] for n in (1, 2)}

    before = changes()
    result = cluster.apply()  # refreshes (reads) every host, then changes nothing
    assert "No changes. Your cluster matches the Clusterfile." in result.stdout
    assert changes() == before
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 0


def test_f_a_host_down_fails_its_action_skips_dependents_and_recovers(cluster):
    cluster.write([1], [2])
    cluster.apply()
    sandbox.stop_sshd(sandbox.hosts()[2])  # host 3 goes dark
    cluster.write([1, 3, 4], [2, 5])  # join_master 3 -> join_master 4; join_worker 5
    result = cluster.apply("--ssh-timeout", "3s", expect=1)
    assert f"failed:  join_master.{ip(3)}" in result.stderr
    assert f"skipped: join_master.{ip(4)}" in result.stderr
    state = cluster.state()
    assert set(state["hosts"]) == {ip(1), ip(2), ip(5)}  # exactly what finished
    sandbox.start_sshd(sandbox.hosts()[2])
    result = cluster.apply()
    assert "2 added, 0 changed, 0 destroyed" in result.stdout
    assert set(cluster.state()["hosts"]) == {ip(n) for n in (1, 2, 3, 4, 5)}
    for n in (3, 4, 5):  # each host joined exactly once, the failed one included
        assert len([e for e in command_log(n) if is_join(e)]) == 1, command_log(n)


def test_g_destroy_leaves_no_rootfs_and_an_empty_state(cluster):
    cluster.write([1], [2, 3])
    cluster.apply()
    result = cluster.sealer("destroy", "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert "0 added, 0 changed, 3 destroyed" in result.stdout
    for n in (1, 2, 3):
        leftovers = ssh(
            n,
            f"ls /var/lib/sealer/data/{cluster.name} /usr/local/lib/sandbox-standin"
            " 2>/dev/null; true",
        ).stdout
        assert leftovers == ""
        assert "6443" not in ssh(n, "ss -ltn 2>/dev/null || true").stdout.split(ip(n))[-1][:8]
    state = cluster.state()
    assert state["hosts"] == {} and state["image"] is None
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 2  # a fresh install again


def test_run_writes_a_clusterfile_and_applies_it_then_kubeconfig(hosts, tmp_path, sealer_home):
    image = str(IMAGES / "k3s-v1.25.3")
    result = sealer(
        "run",
        image,
        "--masters",
        ip(1),
        "--nodes",
        f"{ip(2)},{ip(3)}",
        "--pk",
        str(sandbox.key_path()),
        "--name",
        "quick",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    clusterfile = sealer_home / "clusters" / "quick" / "Clusterfile"
    assert clusterfile.exists() and "Apply complete! Resources: 3 added" in result.stdout
    out = tmp_path / "admin.conf"
    fetched = sealer("kubeconfig", "-f", str(clusterfile), "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(out.read_text())["server"] == f"https://{ip(1)}:6443"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
