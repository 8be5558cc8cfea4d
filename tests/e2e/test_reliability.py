"""End-to-end reliability: kill -9 at many points, signals, concurrent runs, host keys, secrets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sandbox import hosts as sandbox
from tests.e2e.conftest import NEW, Cluster, command_log, host, ip, ssh
from tests.helpers import ROOT, sealer

JOINS = ("kubeadm init --config", "kubeadm join")  # not `kubeadm init phase upload-certs`


def start_apply(cluster: Cluster, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealer_cli.main",
            "apply",
            "-f",
            str(cluster.path),
            "--auto-approve",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def joins_on(n: int) -> int:
    return len([e for e in command_log(n) if " ".join(e["argv"]).startswith(JOINS)])


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.6, 4.3, 5.2])
def test_kill_9_at_any_moment_then_apply_finishes_without_repeating_a_step(hosts, tmp_path, delay):
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1, 2], [3, 4, 5])
    proc = start_apply(cluster)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state_file = cluster.state_path()
    serial_after_kill = json.loads(state_file.read_text())["serial"] if state_file.exists() else 0
    journal = state_file.with_name(state_file.name + ".journal")
    joined = {
        json.loads(line)["patch"]["ip"]
        for line in (journal.read_text().splitlines() if journal.exists() else [])
        if json.loads(line)["patch"]["op"] == "set_host"
    }
    assert joined <= set(cluster.state()["hosts"])  # every finished action is in the state
    cluster.apply()  # finishes the job
    state = cluster.state()  # parses, and its serial never went back
    assert state["serial"] >= serial_after_kill
    assert set(state["hosts"]) == {ip(n) for n in (1, 2, 3, 4, 5)}
    for n in (1, 2, 3, 4, 5):  # one init or join per host, never two
        assert joins_on(n) == 1, (n, [" ".join(e["argv"])[:50] for e in command_log(n)])
    assert cluster.sealer("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_lets_running_actions_finish_then_exits(hosts, tmp_path, sig, code):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3, 4])
    slow = {
        "apiVersion": "sealer.io/v1",
        "kind": "Plugin",
        "metadata": {"name": "slow"},
        "spec": {"type": "SHELL", "action": "post-init-host", "scope": "node", "data": "sleep 2"},
    }
    cluster.path.write_text(cluster.path.read_text() + "---\n" + yaml.safe_dump(slow))
    proc = start_apply(cluster, "--parallelism", "1")
    for line in proc.stdout:  # signal once the first join is under way (plain progress lines)
        if line.startswith("join_worker.") and "starting" in line:
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted" in err and "left undone" in err
    recorded = set(cluster.state()["hosts"])
    assert len(recorded) == 2 and ip(1) in recorded  # the init and the running join
    cluster.apply()
    assert set(cluster.state()["hosts"]) == {ip(n) for n in (1, 2, 3, 4)}


def test_two_applies_at_once_one_runs_the_other_fails_with_the_holder(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3])
    first = start_apply(cluster)
    time.sleep(0.8)
    second = cluster.sealer("apply", "--auto-approve")
    assert second.returncode == 1
    assert "locked by another sealer run" in second.stderr
    assert f"PID={first.pid}" in second.stderr and "Operation=apply" in second.stderr
    assert first.wait(timeout=120) == 0
    waited = cluster.sealer("apply", "--auto-approve", "--lock-timeout", "30s")
    assert waited.returncode == 0 and "No changes." in waited.stdout


def test_changed_host_key_refuses_the_host_until_forgotten(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    cluster.apply()
    old = cluster.state()["hosts"][ip(2)]["host_key"]
    sandbox.regenerate_host_key(host(2))
    cluster.write([1], [2], version=NEW)  # an upgrade: work on host 2 itself
    result = cluster.apply(expect=1)  # the refresh finds it: refused before anything runs
    said = result.stdout + result.stderr
    assert f"{ip(2)}: unknown — host key changed (the state pinned {old}" in said
    assert "sealer state forget-host-key " + ip(2) in said
    assert ssh(2, "kubectl get nodes 2>/dev/null; true").stdout == ""  # nothing ran there
    forgot = cluster.sealer("state", "forget-host-key", ip(2))
    assert forgot.returncode == 0, forgot.stderr
    cluster.apply()
    new = cluster.state()["hosts"][ip(2)]["host_key"]
    assert new.startswith("SHA256:") and new != old


def test_wrong_key_and_dead_host_fail_fast_with_clear_errors(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True
    )
    cluster.write(
        [1],
        [2],
        worker_extra={"ssh": {"pk": str(wrong_key)}},
        more_groups=[{"ips": [ip(3)], "roles": ["node"]}],
    )
    sandbox.stop_sshd(host(3))
    started = time.monotonic()
    result = cluster.apply("--ssh-timeout", "2s", "--retries", "1", expect=1)
    assert time.monotonic() - started < 90
    assert f"failed:  join_worker.{ip(2)}: {ip(2)}: SSH authentication failed" in result.stderr
    assert f"failed:  join_worker.{ip(3)}: {ip(3)}: cannot connect over SSH" in result.stderr
    assert "Traceback" not in result.stderr
    assert set(cluster.state()["hosts"]) == {ip(1)}  # exactly what finished


def test_secrets_never_leave_the_hosts(hosts, tmp_path, sealer_home):
    password, env_secret = "Pw-7f3c9e1a-NEVER-PRINT", "Env-5b2d8c4f-NEVER-PRINT"
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3], ssh={"passwd": password}, env=[f"DB_PASSWORD={env_secret}"])
    outputs = [cluster.apply(), cluster.apply("--json")]
    token = ssh(1, "cat /var/lib/rancher/k3s/server/token").stdout.strip()
    assert len(token) > 20
    cluster.write([1], [2, 4], ssh={"passwd": password}, env=[f"DB_PASSWORD={env_secret}"])
    plan_file = tmp_path / "plan.json"
    outputs.append(cluster.sealer("plan", "--out", str(plan_file)))
    assert plan_file.exists(), outputs[-1].stdout[-500:] + outputs[-1].stderr[-1000:]
    outputs.append(cluster.sealer("plan", "--json"))
    outputs.append(cluster.sealer("apply", str(plan_file)))
    outputs.append(cluster.sealer("show", "--json"))
    outputs.append(cluster.sealer("drift", "--json"))
    outputs.append(cluster.sealer("destroy", "--auto-approve", "--json"))
    everything = "".join(r.stdout + r.stderr for r in outputs)
    files = [p for p in Path(sealer_home).rglob("*") if p.is_file()] + [plan_file]
    for secret in (password, env_secret, token):
        assert secret not in everything
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
    assert all(r.returncode == 0 for r in outputs), [r.stderr for r in outputs]


def test_processes_of_a_killed_apply_leave_no_lock(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    proc = start_apply(cluster)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = cluster.sealer("apply", "--auto-approve")  # the kernel dropped the lock
    assert result.returncode == 0, result.stderr


def test_host_that_accepts_tcp_but_never_speaks_ssh_times_out(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    frozen = sandbox._sshd_pids(host(2))
    for pid in frozen:  # the kernel still accepts TCP connections; nothing answers
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = cluster.apply("--ssh-timeout", "2s", "--retries", "0", expect=1)
        assert time.monotonic() - started < 60
        assert f"failed:  join_worker.{ip(2)}: {ip(2)}: cannot connect over SSH" in result.stderr
        assert set(cluster.state()["hosts"]) == {ip(1)}
    finally:
        for pid in frozen:  # a session of an earlier connection (sshd too) may have ended
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_hanging_command_is_ended_by_the_command_timeout(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    hang = {
        "apiVersion": "sealer.io/v1",
        "kind": "Plugin",
        "metadata": {"name": "hang"},
        "spec": {"type": "SHELL", "action": "pre-init-host", "scope": "node", "data": "sleep 600"},
    }
    cluster.path.write_text(cluster.path.read_text() + "---\n" + yaml.safe_dump(hang))
    started = time.monotonic()
    result = cluster.apply("--command-timeout", "3s", expect=1)
    assert time.monotonic() - started < 60
    assert f"failed:  join_worker.{ip(2)}: {ip(2)}: " in result.stderr
    assert "timed out after 3s" in result.stderr
    assert set(cluster.state()["hosts"]) == {ip(1)}


def test_a_key_that_contradicts_the_users_known_hosts_is_refused(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    algorithm, blob = other.with_suffix(".pub").read_text().split()[:2]
    (home / ".ssh" / "known_hosts").write_text(f"{ip(2)} {algorithm} {blob}\n")
    result = sealer(
        "apply",
        "-f",
        str(cluster.path),
        "--auto-approve",
        "--retries",
        "0",
        env={"HOME": str(home)},
        timeout=300,
    )
    assert result.returncode == 1
    assert f"{ip(2)}: the host key (SHA256:" in result.stderr
    assert "does not match the one in your known_hosts" in result.stderr
    assert set(cluster.state()["hosts"]) == {ip(1)}
