"""Refresh and drift: `plan` refreshes by default, `--refresh-only`, and `sealer drift` for cron."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cluster.errors import SealerError
from cluster.model import DRIFT_KINDS, Cluster, Finding
from sealer_cli import render


def refresh_state(args, cluster: Cluster, state: dict) -> tuple[list[Finding], dict, list[str]]:
    """(findings, the state as the live cluster is, warnings). No refresh: ([], state, [])."""
    if getattr(args, "refresh", "true") == "false" or not state["hosts"]:
        return [], state, []
    from executors.refresh import refresh
    from planner.drift import accept_drift, find_drift
    from sealer_cli.commands import ssh_driver

    driver = ssh_driver(args, cluster, state)
    try:
        facts, view = refresh(state, driver, parallelism=max(getattr(args, "parallelism", 20), 20))
    finally:
        driver.close()
    warnings = [] if view.source else [f"could not read the cluster's own view: {view.error}"]
    findings = find_drift(state, facts, view)
    return findings, accept_drift(state, findings), warnings


def render_drift(findings: list[Finding], colour: bool) -> str:
    paint = render.Painter(colour)
    lines = [paint("Note: the cluster has changed outside of sealer", "bold"), ""]
    for f in findings:
        lines.append(
            f"  {paint('!', 'change')} {f.kind:<24} {f.host:<16} expected "
            f"{_show(f.expected)}, found {_show(f.actual)}"
        )
    return "\n".join(lines) + "\n\n"


def _show(value) -> str:
    if value is None:
        return "nothing"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def drift_document(args, cluster: Cluster, state: dict, findings, warnings) -> dict:
    return {
        "format_version": "1",
        "cluster": cluster.name,
        "lineage": state["lineage"] if state["serial"] else None,
        "serial": state["serial"],
        "drift": [f.to_json() for f in findings],
        "warnings": warnings,
    }


def print_refresh_only(args, findings, warnings) -> None:
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    if findings:
        sys.stdout.write(render_drift(findings, render.use_colour()))
        print(
            f"Drift: {len(findings)} finding(s). Run `sealer plan` to see the actions that "
            f"bring the cluster back, or `sealer apply --refresh-only` to accept the drift "
            f"into the state."
        )
    else:
        print("No drift. The cluster matches the state.")


def cmd_drift(args) -> int:
    """The cron entry point: a refresh-only plan with the detailed exit code, plus metrics."""
    from sealer_cli.commands import load_cluster, locked_state

    name = "unknown"
    try:
        cluster = load_cluster(args.file)
        name = cluster.name
        with locked_state(args, cluster.name, "drift") as (_, state):
            findings, _, warnings = refresh_state(args, cluster, state)
    except SealerError:
        if args.prometheus:
            write_prometheus(Path(args.prometheus), name, [], success=False)
        raise
    if args.prometheus:
        write_prometheus(Path(args.prometheus), cluster.name, findings, success=True)
    if args.json:
        print(json.dumps(drift_document(args, cluster, state, findings, warnings)))
    else:
        print_refresh_only(args, findings, warnings)
    return 2 if findings else 0


def write_prometheus(path: Path, cluster: str, findings: list[Finding], success: bool) -> None:
    """node_exporter textfile collector format, replaced atomically."""
    from state.local import atomic_write

    label = cluster.replace("\\", "\\\\").replace('"', '\\"')
    counts = {kind: 0 for kind in DRIFT_KINDS}
    for f in findings:
        counts[f.kind] += 1
    lines = [
        "# HELP sealer_drift_findings Drift findings of the last check, by kind.",
        "# TYPE sealer_drift_findings gauge",
        *(f'sealer_drift_findings{{cluster="{label}",kind="{k}"}} {n}' for k, n in counts.items()),
        "# HELP sealer_hosts_unreachable Hosts that could not be reached at the last check.",
        "# TYPE sealer_hosts_unreachable gauge",
        f'sealer_hosts_unreachable{{cluster="{label}"}} {counts["host_unreachable"]}',
        "# HELP sealer_last_check_timestamp_seconds When the last check ran (Unix time).",
        "# TYPE sealer_last_check_timestamp_seconds gauge",
        f'sealer_last_check_timestamp_seconds{{cluster="{label}"}} {time.time():.3f}',
        "# HELP sealer_check_success 1 if the last check completed, 0 if it failed.",
        "# TYPE sealer_check_success gauge",
        f'sealer_check_success{{cluster="{label}"}} {1 if success else 0}',
    ]
    atomic_write(path, ("\n".join(lines) + "\n").encode(), mode=0o644)  # node_exporter reads it
