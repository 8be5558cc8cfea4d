"""`sealer state ...`: move the state between backends, list and recover versions, repair it.

Push follows Terraform's rules: a state of another lineage, an older serial, or the same serial
with other content is refused unless forced; a forced push over a newer state bumps the serial
past it, so plans saved against the overwritten state go stale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cluster.errors import SealerError
from cluster.records import State
from operations.common import StateRef, load_cluster, locked_state, write_state
from operations.events import Listener
from state.common import parse
from state.document import content


@dataclass(frozen=True)
class StateRequest:
    """Which cluster's state: by --cluster NAME, else the Clusterfile's name."""

    clusterfile: str = "Clusterfile"
    cluster: str | None = None
    state: StateRef = StateRef()


def cluster_name(request: StateRequest, listener: Listener) -> str:
    """--cluster, else the cluster a --state file (or $SEALER_STATE) names when there is no
    Clusterfile to read, else the Clusterfile's name."""
    if request.cluster:
        return request.cluster
    path = request.state.path
    if not path and not request.state.backend_url and not os.environ.get("SEALER_BACKEND"):
        path = os.environ.get("SEALER_STATE")
    if path and not Path(request.clusterfile).exists():
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            raise SealerError(f"{path}: cannot read the state: {e.strerror}") from None
        return parse(raw, path)["cluster"]
    return load_cluster(request.clusterfile, listener).name


def pull(request: StateRequest, listener: Listener, serial: int | None = None) -> dict:
    """The state document (journal folded in), or one of the kept earlier versions."""
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state pull") as locked:
        doc = locked.doc
        if serial is not None and serial != doc["serial"]:
            return _earlier_version(locked.backend, serial)
        if not doc["serial"]:
            raise SealerError(f"{locked.backend.describe()}: no state for cluster {name!r}")
    return doc


def _earlier_version(backend, serial: int) -> dict:
    doc = backend.read_version(serial)
    if doc is None:
        raise SealerError(
            f"{backend.describe()}: no kept version with serial {serial}; "
            f"see `sealer state versions`"
        )
    return doc


@dataclass(frozen=True)
class Versions:
    current: State  # serial 0: nothing stored
    earlier: list[tuple[int, str, str]]  # (serial, lineage, saved at), newest first


def versions(request: StateRequest, listener: Listener) -> Versions:
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state versions") as locked:
        return Versions(locked.state, locked.backend.versions())


@dataclass(frozen=True)
class Pushed:
    where: str
    state: State
    changed: bool  # False: the backend already held this state


def push(request: StateRequest, path: str, force: bool, listener: Listener) -> Pushed:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise SealerError(f"{path}: cannot read: {e.strerror}") from None
    pushed = parse(raw, path)
    name = request.cluster or pushed.get("cluster")
    if not isinstance(name, str) or not name:
        raise SealerError(f"{path}: the state names no cluster; pass --cluster NAME")
    if pushed.get("cluster") != name:
        raise SealerError(
            f"{path}: this state belongs to cluster {pushed.get('cluster')!r}, not {name!r}"
        )
    with locked_state(request.state, name, "state push") as locked:
        current, where = locked.doc, locked.backend.describe()
        exists = current["serial"] > 0
        if exists and not force:
            _refuse_unsafe_push(path, pushed, current, where)
        if exists and content(pushed) == content(current):
            return Pushed(where, State.from_json(current), changed=False)
        if exists and pushed["serial"] <= current["serial"]:
            pushed["serial"] = current["serial"] + 1  # forced over a newer state: see above
        locked.backend.store(pushed)
    return Pushed(where, State.from_json(pushed), changed=True)


def _refuse_unsafe_push(path: str, pushed: dict, current: dict, where: str) -> None:
    if pushed["lineage"] != current["lineage"]:
        raise SealerError(
            f"{path}: cannot push: it has lineage {pushed['lineage']}, the state in {where} has "
            f"lineage {current['lineage']} (an unrelated state); use --force to overwrite it"
        )
    if pushed["serial"] < current["serial"]:
        raise SealerError(
            f"{path}: cannot push: its serial {pushed['serial']} is older than the state in "
            f"{where} (serial {current['serial']}); pull the newer state, or use --force"
        )
    if pushed["serial"] == current["serial"] and content(pushed) != content(current):
        raise SealerError(
            f"{path}: cannot push: it has the same serial ({pushed['serial']}) as the state in "
            f"{where} but different content; use --force to overwrite it"
        )


def forget_host_key(request: StateRequest, ip: str, listener: Listener) -> str:
    """Forget the key pinned for ip (a host's IP, or a bastion's ADDRESS:PORT); the next
    contact records the key it sees. Returns the forgotten key ('' if none was pinned)."""
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "state forget-host-key") as locked:
        jumps = locked.state.jump_keys
        if ip in jumps:
            rest = {n: k for n, k in jumps.items() if n != ip}
            write_state(locked, replace(locked.state, jump_keys=rest))
            return jumps[ip]
        record = locked.state.hosts.get(ip)
        if record is None:
            raise SealerError(
                f"{ip} is not a host nor a bastion (ADDRESS:PORT) of cluster {name!r} in "
                f"{locked.backend.describe()}"
            )
        hosts = {**locked.state.hosts, ip: replace(record, host_key="")}
        write_state(locked, locked.state.with_hosts(hosts))
    return record.host_key
