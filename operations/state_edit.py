"""`sealer state list | rm | mv`: state surgery on hosts, Terraform's way.

Each change runs under the state lock, keeps the lineage, bumps the serial and leaves the
backend's backup of the previous version (state/local.py keeps one, PostgreSQL ten). Nothing
is done on any host: these commands only change what sealer believes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from cluster.errors import SealerError
from cluster.records import HostRecord, State
from operations.common import locked_state, write_state
from operations.events import Listener
from operations.state_sync import StateRequest, cluster_name


@dataclass(frozen=True)
class Listed:
    where: str
    state: State


def list_hosts(request: StateRequest, listener: Listener) -> Listed:
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state list") as locked:
        return Listed(locked.backend.describe(), locked.state)


@dataclass(frozen=True)
class Edited:
    where: str
    state: State  # as written
    removed: dict[str, HostRecord]  # rm: what was forgotten


def remove_hosts(request: StateRequest, ips: tuple[str, ...], listener: Listener) -> Edited:
    """Forget hosts (a machine that burned) without touching them or the cluster."""
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state rm") as locked:
        state, where = locked.state, locked.backend.describe()
        for ip in ips:
            _known(state, ip, name, where)
        hosts = {ip: r for ip, r in state.hosts.items() if ip not in ips}
        removed = {ip: state.hosts[ip] for ip in ips}
        new = state.with_hosts(hosts)
        if state.bootstrap_master in ips:  # another master serves the endpoint from now on
            masters = [ip for ip, r in hosts.items() if r.is_master]
            new = replace(new, bootstrap_master=masters[0] if masters else None)
        for ip, record in removed.items():
            node = record.hostname or "NODE"
            member = " and its etcd member (etcdctl member remove)" if record.is_master else ""
            listener.warning(
                f"{ip}: its node stays in the cluster{member} until removed there "
                f"(kubectl delete node {node})"
            )
        write_state(locked, new)
    return Edited(where, new, removed)


def move_host(request: StateRequest, old: str, new_ip: str, listener: Listener) -> Edited:
    """A host re-addressed: its record (roles, version, pinned host key) under its new address."""
    new_ip = _address(new_ip)
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state mv") as locked:
        state, where = locked.state, locked.backend.describe()
        _known(state, old, name, where)
        if new_ip in state.hosts:
            raise SealerError(f"{new_ip} is already a host of cluster {name!r} in {where}")
        hosts = {(new_ip if ip == old else ip): r for ip, r in state.hosts.items()}
        moved = state.with_hosts(hosts)
        if state.bootstrap_master == old:
            moved = replace(moved, bootstrap_master=new_ip)
        write_state(locked, moved)
    return Edited(where, moved, {})


def _known(state: State, ip: str, name: str, where: str) -> None:
    if ip not in state.hosts:
        known = ", ".join(state.hosts) or "none"
        raise SealerError(f"{ip} is not a host of cluster {name!r} in {where} (hosts: {known})")


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SealerError(f"{value!r}: not an IP address") from None
