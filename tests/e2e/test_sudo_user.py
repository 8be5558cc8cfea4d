"""End-to-end: a whole apply as a non-root user who logs in with a password and whose sudo asks
for it (no key, no NOPASSWD), as many operators' hosts are set up. Every command, upload and
relayed stream goes through `sudo -S` with the password on stdin; it never reaches an argv,
the output or the state."""

from __future__ import annotations

import secrets
import subprocess

import yaml

from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, api, host, ip
from tests.helpers import sealer

USER = "deploy"


def _add_user(n: int, password: str) -> None:
    """A user whose sudo needs its password, made inside host n (the hash, not the password,
    in the argv)."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    sandbox.run_in(host(n), ["useradd", "-m", "-s", "/bin/bash", "-p", hashed, USER])
    sandbox.run_in(
        host(n),
        ["sh", "-c", f"echo '{USER} ALL=(ALL) ALL' > /etc/sudoers.d/{USER} && "
                     f"chmod 0440 /etc/sudoers.d/{USER}"],
    )  # fmt: skip


def test_a_user_whose_sudo_needs_a_password_applies_a_whole_cluster(hosts, tmp_path):
    password = "pw-" + secrets.token_hex(12)
    for n in (1, 2, 3):
        _add_user(n, password)
    # sudo really asks: without the password, it refuses
    refused = subprocess.run(
        ["nsenter", "-t", str(host(2).init_pid), "-m", "-u", "-p", "-n", "-r", "-w",
         "runuser", "-u", USER, "--", "sudo", "-n", "true"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "password is required" in refused.stderr

    cluster = Cluster(tmp_path, "k3s")
    path = cluster.write([1], [2, 3])
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["ssh"] = {"user": USER, "passwd": "${DEPLOY_PASSWORD}", "port": "22"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    env = {"DEPLOY_PASSWORD": password, "SEALER_LOG": "debug"}
    applied = sealer("apply", "-f", str(path), "--auto-approve", env=env, timeout=300)
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    assert "relay: 3 of 3 hosts got the image through the cluster" in applied.stdout
    assert sorted(api(1, "/nodes")) == sorted(f"sandbox-{n}" for n in (1, 2, 3))

    # The password is nowhere: output, debug log, state.
    state = cluster.state_path().read_text()
    for text in (applied.stdout, applied.stderr, state):
        assert password not in text
    # the debug log shows each remote command with its exit and time
    assert f"DEBUG sealer.ssh: {ip(2)}: `" in applied.stderr and "exited 0 after" in applied.stderr

    # The next plan reads the hosts as that user too, and finds nothing to do.
    plan = sealer("plan", "-f", str(path), "--detailed-exitcode", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert ip(1) in cluster.state_path().read_text()
