"""The control-plane endpoint name on each host (`apiserver.cluster.local` by default).

Every kubelet, k3s agent, k0s worker and kubeconfig talks to the API through this name, never
through a master's address, so a master can leave without stranding the nodes. A master maps
the name to itself; a worker to a running master (the bootstrap master). The mapping is one
line of the host's hosts file, marked as sealer's; sealer moves it before a master leaves.

Sealer (Go) points workers at a virtual address balanced by lvscare (IPVS) on every node. A
hosts-file line needs no kernel module and no extra process on the node; its cost is that a
worker whose master dies unannounced waits for the next apply to move it (drift reports it).
"""

from __future__ import annotations

from cluster.names import dns_name_problem
from executors import hostsfile

MARK = "# sealer: control-plane endpoint"
HOSTS = hostsfile.HOSTS


def point_command(name: str, address: str) -> str:
    """Make `name` resolve to `address` on the host: sealer's line replaced, nothing else
    touched."""
    return hostsfile.set_lines_command(MARK, point_lines(name, address))


def point_lines(name: str, address: str) -> list[str]:
    """The hosts-file lines (without the mark) that map `name` to `address`."""
    if dns_name_problem(name):  # checked at load time; never a command with an odd name
        raise ValueError(f"endpoint {name!r} {dns_name_problem(name)}")
    return [f"{address} {name}"]


def remove_command() -> str:
    """Take sealer's line out of the hosts file (a host leaving the cluster)."""
    return hostsfile.set_lines_command(MARK, [])


def parse_mapping(text: str) -> str | None:
    """The address sealer's line maps the endpoint to, None when there is no such line."""
    for line in text.splitlines():
        if MARK in line:
            fields = line.split()
            return fields[0] if fields else None
    return None
