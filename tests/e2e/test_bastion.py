"""End-to-end: a cluster whose hosts this machine cannot reach, behind a bastion (issue 32).

Topology: four netns sandbox hosts; sandbox-1 is the bastion, sandbox-2..4 are made private
(`sealer sandbox private`: a blackhole route inside each for this machine's address), so a
direct `ssh` to them fails while the bastion and the hosts still reach each other. Every
step (apply with the relay, drift, --replace, kubeconfig, destroy) goes through the bastion,
whose key the state pins; then the same cluster is planned from ~/.ssh/config's ProxyJump and
ssh-agent alone (no bastion, no key in the Clusterfile)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
import yaml

from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, ip
from tests.helpers import sealer

BASTION, MASTER, WORKERS = 1, 2, (3, 4)
PRIVATE = (MASTER, *WORKERS)


@pytest.fixture
def private_hosts(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SEALER_SANDBOX_DIR", str(tmp_path_factory.mktemp("bastion-sandbox")))
    started = sandbox.up(4)
    for n in PRIVATE:
        sandbox.make_private(f"sandbox-{n}")
    yield started
    sandbox.down()


def _direct_ssh(n: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(sandbox.key_path()), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=2", f"root@{ip(n)}", "true"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def _nodes() -> list[str]:
    """The API stand-in's nodes, asked inside the master (this machine has no route to it)."""
    inside = sandbox.run_in(
        sandbox.find(f"sandbox-{MASTER}", "test"),
        ["python3", "-c", "import urllib.request as u; "
         f"print(u.urlopen('http://{ip(MASTER)}:6443/nodes', timeout=10).read().decode())"],
    )  # fmt: skip
    return sorted(json.loads(inside.stdout))


def _bastion(**extra) -> dict:
    return {"address": ip(BASTION), "pk": str(sandbox.key_path()), **extra}


@pytest.fixture
def agent(tmp_path, monkeypatch):
    """An ssh-agent holding the sandbox key, for this test only."""
    sock = tmp_path / "agent.sock"
    started = subprocess.run(
        ["ssh-agent", "-a", str(sock), "-s"], capture_output=True, text=True, check=True
    )
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    subprocess.run(["ssh-add", "-q", str(sandbox.key_path())], check=True, capture_output=True)
    yield sock
    os.kill(pid, 15)


def test_a_cluster_behind_a_bastion_lives_its_whole_life_through_it(
    private_hosts, tmp_path, agent, monkeypatch
):
    assert _direct_ssh(BASTION).returncode == 0
    for n in PRIVATE:  # the operator has no way to them but the bastion
        refused = _direct_ssh(n)
        assert refused.returncode == 255, refused.stderr

    cluster = Cluster(tmp_path, "k3s", name="behind")
    cluster.write([MASTER], list(WORKERS), ssh={"bastion": _bastion()})
    monkeypatch.delenv("SSH_AUTH_SOCK")  # the Clusterfile's keys alone
    applied = cluster.apply()
    assert "relay: 3 of 3 hosts got the image through the cluster" in applied.stdout
    assert _nodes() == [f"sandbox-{n}" for n in PRIVATE]
    pinned = cluster.state()["jump_keys"]
    shown = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", ip(BASTION)], capture_output=True, text=True
    ).stdout
    assert list(pinned) == [f"{ip(BASTION)}:22"]
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=shown, capture_output=True, text=True, check=True
    )
    assert pinned[f"{ip(BASTION)}:22"] == keygen.stdout.split()[1]

    drift = cluster.sealer("drift")  # 0: no drift, 2: drift
    assert drift.returncode == 0, drift.stdout + drift.stderr
    listed = sealer("connections", "ls").stdout  # kept connections go through the bastion
    for n in PRIVATE:
        assert any(
            ip(n) in line and f"via bastion {ip(BASTION)}:22" in line
            for line in listed.splitlines()
        ), listed

    replaced = cluster.apply("--replace", ip(WORKERS[0]))
    assert "1 added, 0 changed, 1 destroyed" in replaced.stdout
    kubeconfig = cluster.sealer("kubeconfig", "-o", str(tmp_path / "kubeconfig"))
    assert kubeconfig.returncode == 0, kubeconfig.stderr
    assert f"https://{ip(MASTER)}:6443" in (tmp_path / "kubeconfig").read_text()

    # The same cluster from ~/.ssh/config (ProxyJump) and ssh-agent alone: nothing to do.
    config = tmp_path / "ssh_config"
    names = " ".join(ip(n) for n in PRIVATE)
    config.write_text(f"Host {names}\n    ProxyJump root@{ip(BASTION)}\n")
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(config))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
    doc = yaml.safe_load(cluster.path.read_text())
    doc["spec"]["ssh"] = {}
    plain = tmp_path / "Clusterfile.plain"
    plain.write_text(yaml.safe_dump(doc, sort_keys=False))
    for persist in ("10m", "0"):  # over kept connections, then over the run's own
        plan = sealer("plan", "-f", str(plain), "--detailed-exitcode", "--ssh-persist", persist)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "No changes" in plan.stdout
    # A chain (ProxyJump a,b: the last host through the bastion, then the master), and the
    # user's own ProxyCommand: the same cluster again.
    bastion_then_master = f"root@{ip(BASTION)},root@{ip(MASTER)}"
    config.write_text(
        f"Host {ip(MASTER)} {ip(WORKERS[0])}\n    ProxyJump root@{ip(BASTION)}\n"
        f"Host {ip(WORKERS[1])}\n    ProxyJump {bastion_then_master}\n"
    )
    for persist in ("10m", "0"):
        plan = sealer("plan", "-f", str(plain), "--detailed-exitcode", "--ssh-persist", persist)
        assert plan.returncode == 0, plan.stdout + plan.stderr
    key = sandbox.key_path()
    config.write_text(
        f"Host {names}\n    IdentityFile {key}\n    ProxyCommand ssh -F /dev/null -i {key} "
        f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -W %h:%p root@{ip(BASTION)}\n"
    )
    monkeypatch.delenv("SSH_AUTH_SOCK")
    plan = sealer("plan", "-f", str(plain), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    monkeypatch.delenv("SEALER_SSH_CONFIG")

    # The bastion's key is pinned: a bastion that shows another is refused, for every host.
    sealer("connections", "close")
    sandbox.regenerate_host_key(sandbox.find("sandbox-1", "test"))
    refused = cluster.sealer("plan", "--detailed-exitcode")
    assert refused.returncode == 1
    for n in PRIVATE:
        assert f"{ip(n)}: unknown — bastion {ip(BASTION)}:22 refused: host key changed" in (
            refused.stdout
        )
    forgot = cluster.sealer("state", "forget-host-key", f"{ip(BASTION)}:22")
    assert forgot.returncode == 0, forgot.stderr
    # A bastion that does not answer: each host behind it is unknown, the plan exits 1.
    sandbox.stop_sshd(sandbox.find("sandbox-1", "test"))
    down = cluster.sealer("plan")
    assert down.returncode == 1
    for n in PRIVATE:
        assert f"{ip(n)}: unknown — bastion {ip(BASTION)}:22 down" in down.stdout, down.stdout
    sandbox.start_sshd(sandbox.find("sandbox-1", "test"))

    destroyed = cluster.sealer("destroy", "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout[-2000:] + destroyed.stderr[-2000:]
    assert "3 destroyed" in destroyed.stdout
    for n in PRIVATE:
        assert not sandbox.run_in(
            sandbox.find(f"sandbox-{n}", "test"),
            ["sh", "-c", "ls /var/lib/sealer/data 2>/dev/null; true"],
        ).stdout.strip()


USER = "deploy"


def _add_sudo_user(n: int, password: str, nopasswd: bool) -> None:
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    where = sandbox.find(f"sandbox-{n}", "test")
    sandbox.run_in(where, ["useradd", "-m", "-s", "/bin/bash", "-p", hashed, USER])
    rule = "ALL=(ALL) NOPASSWD: ALL" if nopasswd else "ALL=(ALL) ALL"
    sandbox.run_in(
        where,
        ["sh", "-c", f"echo '{USER} {rule}' > /etc/sudoers.d/{USER} && "
                     f"chmod 0440 /etc/sudoers.d/{USER} && install -d -o {USER} -m 700 "
                     f"/home/{USER}/.ssh && cp /root/.ssh/authorized_keys /home/{USER}/.ssh/ && "
                     f"chown {USER} /home/{USER}/.ssh/authorized_keys"],
    )  # fmt: skip


def test_non_root_sudo_users_with_and_without_a_sudo_password_through_the_bastion(
    private_hosts, tmp_path
):
    password = "pw-" + secrets.token_hex(12)
    _add_sudo_user(MASTER, password, nopasswd=True)  # a key login, passwordless sudo
    for n in WORKERS:
        _add_sudo_user(n, password, nopasswd=False)  # a password login, sudo asks for it
    cluster = Cluster(tmp_path, "k3s", name="sudoers")
    cluster.write(
        [MASTER],
        list(WORKERS),
        ssh={"user": USER, "bastion": _bastion()},
        worker_extra={"ssh": {"user": USER, "passwd": "${DEPLOY_PASSWORD}", "pk": "",
                              "bastion": _bastion()}},
    )  # fmt: skip
    env = {"DEPLOY_PASSWORD": password}
    applied = sealer("apply", "-f", str(cluster.path), "--auto-approve", env=env, timeout=300)
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    assert _nodes() == [f"sandbox-{n}" for n in PRIVATE]
    for n in PRIVATE:  # the sandbox stand-ins ran as root, through sudo
        log = sandbox.run_in(
            sandbox.find(f"sandbox-{n}", "test"),
            ["sh", "-c", "ls /var/lib/sealer/data 2>/dev/null; true"],
        )
        assert "sudoers" in log.stdout
    state = cluster.state_path().read_text()
    assert password not in applied.stdout + applied.stderr + state
    plan = sealer("plan", "-f", str(cluster.path), "--detailed-exitcode", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert json.loads(state)["jump_keys"]
