"""`sealer state ...`: repair the state and move it between backends."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cluster.errors import SealerError
from sealer_cli.commands import load_cluster, locked_state
from state.common import parse
from state.document import content


def run(args) -> int:
    return {
        "forget-host-key": cmd_forget_host_key,
        "pull": cmd_pull,
        "push": cmd_push,
        "versions": cmd_versions,
    }[args.state_command](args)


def cmd_forget_host_key(args) -> int:
    """Accept a host's new key at the next contact."""
    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "state forget-host-key") as (backend, state):
        host = state["hosts"].get(args.ip)
        if host is None:
            raise SealerError(
                f"{args.ip} is not a host of cluster {cluster.name!r} in {backend.describe()}"
            )
        old = host.get("host_key") or "(none)"
        changed = json.loads(json.dumps(state))
        changed["hosts"][args.ip]["host_key"] = ""
        backend.write(changed, state)
    print(
        f"Forgot the host key of {args.ip} ({old}); the key seen at the next contact will be "
        f"recorded."
    )
    return 0


def cmd_pull(args) -> int:
    name = _cluster_name(args)
    with locked_state(args, name, "state pull") as (backend, state):
        if args.serial is not None and args.serial != state["serial"]:
            state = _earlier_version(backend, args.serial)
        elif not state["serial"]:
            raise SealerError(f"{backend.describe()}: no state for cluster {name!r}")
    sys.stdout.write(json.dumps(state, indent=1) + "\n")
    return 0


def cmd_push(args) -> int:
    try:
        raw = Path(args.path).read_bytes()
    except OSError as e:
        raise SealerError(f"{args.path}: cannot read: {e.strerror}") from None
    pushed = parse(raw, args.path)
    name = args.cluster or pushed.get("cluster")
    if not isinstance(name, str) or not name:
        raise SealerError(f"{args.path}: the state names no cluster; pass --cluster NAME")
    if pushed.get("cluster") != name:
        raise SealerError(
            f"{args.path}: this state belongs to cluster {pushed.get('cluster')!r}, not {name!r}"
        )
    with locked_state(args, name, "state push") as (backend, current):
        exists = current["serial"] > 0
        if exists and not args.force:
            _refuse_unsafe_push(args.path, pushed, current, backend.describe())
        if exists and content(pushed) == content(current):
            print(f"{backend.describe()}: already holds this state (serial {current['serial']}).")
            return 0
        if exists and pushed["serial"] <= current["serial"]:
            # Forced over a newer state: bump past it so saved plans made against it go stale.
            pushed["serial"] = current["serial"] + 1
        backend.store(pushed)
    print(
        f"Pushed {args.path} to {backend.describe()}: lineage {pushed['lineage']}, "
        f"serial {pushed['serial']}, {len(pushed['hosts'])} host(s)."
    )
    return 0


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


def cmd_versions(args) -> int:
    name = _cluster_name(args)
    with locked_state(args, name, "state versions") as (backend, state):
        if not hasattr(backend, "versions"):
            raise SealerError(
                f"{backend.describe()}: a local state keeps one earlier version, "
                f"{backend.describe()}.backup; versions are kept by the PostgreSQL backend"
            )
        rows = backend.versions()
    print(f"{'SERIAL':>6}  {'SAVED (UTC)':<20}  LINEAGE")
    if state["serial"]:
        print(f"{state['serial']:>6}  {'(current)':<20}  {state['lineage']}")
    for serial, lineage, saved_at in rows:
        print(f"{serial:>6}  {saved_at:<20}  {lineage}")
    return 0


def _earlier_version(backend, serial: int) -> dict:
    if not hasattr(backend, "read_version"):
        raise SealerError(
            f"{backend.describe()}: --serial needs the PostgreSQL backend; a local state keeps "
            f"one earlier version in {backend.describe()}.backup"
        )
    doc = backend.read_version(serial)
    if doc is None:
        raise SealerError(
            f"{backend.describe()}: no kept version with serial {serial}; "
            f"see `sealer state versions`"
        )
    return doc


def _cluster_name(args) -> str:
    return args.cluster or load_cluster(args.file).name
