"""End-to-end: the sandbox images on a host that `sealer sandbox` did not make.

The host is made by hand here: a network namespace of its own (loopback plus one address from
the benchmarking range 198.18.0.0/15 on a veth link to this machine), its own root (an overlay
of this machine's), its own hostname and an OpenSSH server. Nothing on it says which address is
the node's: the runtimes must pass it, as real kubeadm, k3s and k0s need on multi-homed hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import IMAGES, OLD
from tests.helpers import sealer

OPERATOR, HOST = "198.18.0.1", "198.18.0.2"  # a /30 of the benchmarking range, ours only
LINK = "sealer-plain0"

HOST_INIT = r"""
set -e
dir=$1; key=$2
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
mount -t proc proc "$dir/root/proc"
mount --rbind /dev "$dir/root/dev"
mount -t tmpfs tmpfs "$dir/root/run"
mount -t tmpfs tmpfs "$dir/root/tmp"
hostname plain-host
for _ in $(seq 100); do ip link show eth0 >/dev/null 2>&1 && break; sleep 0.05; done
ip link set lo up
ip addr add 198.18.0.2/30 dev eth0
ip link set eth0 up
chroot "$dir/root" /bin/sh -c "
  rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null &&
  cp /etc/skel/.bashrc /etc/skel/.profile /root/ 2>/dev/null;
  mkdir -p -m 0700 /root/.ssh /run/sshd && printf '%s\n' '$key' > /root/.ssh/authorized_keys &&
  /usr/sbin/sshd -o UseDNS=no"
echo ready
exec sleep infinity
"""


@pytest.fixture
def plain_host(tmp_path):
    """One hand-made host at 198.18.0.2, reachable over a veth link from 198.18.0.1."""
    folder = tmp_path / "plain"
    for sub in ("upper", "work", "root"):
        (folder / sub).mkdir(parents=True)
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ip", "link", "del", LINK], capture_output=True)
    proc = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--uts",
            "--pid",
            "--net",
            "--fork",
            "bash",
            "-c",
            HOST_INIT,
            "init",
            str(folder),
            key.with_suffix(".pub").read_text().strip(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        child = _child_of(proc.pid)
        subprocess.run(
            ["ip", "link", "add", LINK, "type", "veth", "peer", "name", "plain-eth0"], check=True
        )
        subprocess.run(
            ["ip", "link", "set", "plain-eth0", "netns", str(child), "name", "eth0"], check=True
        )
        subprocess.run(["ip", "addr", "add", f"{OPERATOR}/30", "dev", LINK], check=True)
        subprocess.run(["ip", "link", "set", LINK, "up"], check=True)
        assert proc.stdout.readline().strip() == "ready"
        _wait_for_ssh(HOST)
        yield key
    finally:
        # os.killpg, never `kill -9 -PGID`: procps-ng 4.0.2's kill (Debian 12) takes that
        # negative pid for -1 and kills every process of the machine (it ended CI runs)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # unshare and the host's init: its PID namespace
        proc.wait(10)
        subprocess.run(["ip", "link", "del", LINK], capture_output=True)
        subprocess.run(["umount", "-R", str(folder / "root")], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _child_of(pid: int) -> int:
    for _ in range(200):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise AssertionError("the hand-made host did not start")


def _wait_for_ssh(address: str) -> None:
    import socket

    for _ in range(200):
        try:
            with socket.create_connection((address, 22), 0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no SSH server on {address}")


def ssh(key: Path, command: str) -> str:
    result = subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"root@{HOST}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("runtime", ["kubernetes", "k3s", "k0s"])
def test_the_sandbox_images_run_on_a_host_sealer_sandbox_did_not_make(
    plain_host, tmp_path, runtime
):
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "sealer.io/v2",
                "kind": "Cluster",
                "metadata": {"name": f"plain-{runtime}"},
                "spec": {
                    "image": str(IMAGES / f"{runtime}-{OLD}"),
                    "ssh": {"user": "root", "pk": str(plain_host)},
                    "hosts": [{"ips": [HOST], "roles": ["master"]}],
                },
            }
        )
    )
    result = sealer("apply", "--auto-approve", "-f", str(clusterfile), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # The host has two addresses (loopback and 198.18.0.2): the node took the one sealer gave.
    assert "127.0.0.1" in ssh(plain_host, "ip -o addr show lo")
    if runtime == "k0s":  # a controller: an etcd member, not a node
        members = json.loads(ssh(plain_host, "k0s etcd member-list"))["members"]
        assert members == {"plain-host": f"http://{HOST}:2380"}
    else:
        nodes = json.loads(ssh(plain_host, "kubectl get nodes -o json"))["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["plain-host"]
        assert nodes[0]["status"]["addresses"][0]["address"] == HOST
    destroy = sealer("destroy", "--auto-approve", "-f", str(clusterfile), timeout=300)
    assert destroy.returncode == 0, destroy.stdout[-2000:] + destroy.stderr[-2000:]
