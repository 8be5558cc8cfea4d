"""End-to-end: sandbox hosts with networks of their own (sandbox/network.py)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess

import pytest

from sandbox import hosts as sandbox
from sandbox import network
from tests.e2e.conftest import IMAGES, OLD
from tests.helpers import sealer


@pytest.fixture
def netns_hosts(tmp_path, monkeypatch):
    monkeypatch.setenv("SEALER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("SEALER_SANDBOX_NET", "netns")
    started = sandbox.up(3, rate="200mbit", operator_rate="400mbit")
    yield started
    sandbox.down()


def _in(host, command: str) -> str:
    return sandbox.run_in(host, ["sh", "-c", command]).stdout


def test_each_host_has_its_own_network_on_the_bridge_and_a_shaped_link(netns_hosts, tmp_path):
    addresses = [h.address for h in netns_hosts]
    assert addresses == ["198.18.0.2", "198.18.0.3", "198.18.0.4"]
    assert all(ipaddress.ip_address(a) in network.NETWORK for a in addresses)
    # its own loopback and ports: a server on 127.0.0.1:5000 on two hosts does not collide
    for host in netns_hosts[:2]:
        sandbox.run_in(
            host,
            ["sh", "-c", "nohup python3 -m http.server 5000 --bind 127.0.0.1 >/dev/null 2>&1 &"],
        )
    for host in netns_hosts[:2]:
        for _ in range(50):
            if ":5000" in _in(host, "ss -ltn"):
                break
            subprocess.run(["sleep", "0.1"])
        assert "127.0.0.1:5000" in _in(host, "ss -ltn")
    assert "127.0.0.1:5000" not in _in(netns_hosts[2], "ss -ltn")  # not the machine's port
    assert (
        "127.0.0.1:5000"
        not in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    )
    # the links are shaped both ways, the operator's side too
    for host in netns_hosts:
        assert host.link == "tbf rate 200Mbit"
        assert "rate 200Mbit" in _in(host, "tc qdisc show dev eth0")
    bridge = subprocess.run(["tc", "qdisc", "show", "dev", network.BRIDGE], capture_output=True)
    assert b"rate 400Mbit" in bridge.stdout
    listed = sealer("sandbox", "ls").stdout
    assert "198.18.0.3" in listed and "tbf rate 200Mbit" in listed
    # the range goes to the bridge: nothing for it can leave this machine
    route = subprocess.run(["ip", "route", "get", "198.19.200.1"], capture_output=True, text=True)
    assert f"dev {network.BRIDGE}" in route.stdout

    # and a cluster runs there as on the loopback hosts
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(
        sandbox.clusterfile(addresses, str(IMAGES / f"k3s-{OLD}"), masters=1, name="netns")
    )
    result = sealer("apply", "--auto-approve", "-f", str(clusterfile), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "relay: 3 of 3 hosts got the image through the cluster" in result.stdout
    nodes = _in(netns_hosts[0], "k3s kubectl get nodes")
    assert nodes.count(" Ready") == 3, nodes


def test_down_removes_the_bridge(tmp_path, monkeypatch):
    monkeypatch.setenv("SEALER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    sandbox.up(1, net="netns")
    assert (
        subprocess.run(["ip", "link", "show", network.BRIDGE], capture_output=True).returncode == 0
    )
    sandbox.down()
    assert (
        subprocess.run(["ip", "link", "show", network.BRIDGE], capture_output=True).returncode != 0
    )


BOOT = r"""
mkdir -p /etc/systemd/system/multi-user.target.wants /usr/local/bin
printf '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' \
  > /etc/systemd/system/demo.service
ln -s /etc/systemd/system/demo.service /etc/systemd/system/multi-user.target.wants/demo.service
printf '#!/bin/sh\necho "$*" >> /var/log/systemctl-calls\n' > /usr/local/bin/systemctl
chmod +x /usr/local/bin/systemctl
"""


def test_a_host_powered_on_again_starts_what_was_enabled_on_it(tmp_path, monkeypatch):
    """As systemd at boot: the units linked into multi-user.target.wants on the host (by its
    `systemctl enable`), started through the host's own systemctl; its link, pulled, put back."""
    monkeypatch.setenv("SEALER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    try:
        host = sandbox.up(1, net="netns")[0]
        _in(host, BOOT)
        assert _in(host, "cat /var/log/systemctl-calls 2>/dev/null; true") == ""
        sandbox.power_off(host)
        assert sandbox.hosts()[0].init_pid is None
        host = sandbox.up(1, net="netns")[0]  # its disk as it was, a new boot
        assert _in(host, "cat /var/log/systemctl-calls") == "start demo.service\n"
        sandbox.set_link(host, False)
        with pytest.raises(OSError):
            socket.create_connection((host.address, 22), timeout=1).close()
        sandbox.set_link(host, True)
        socket.create_connection((host.address, 22), timeout=10).close()
    finally:
        sandbox.down()
