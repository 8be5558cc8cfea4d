"""Drift metrics for node_exporter's textfile collector."""

from __future__ import annotations

import time
from pathlib import Path

from cluster.model import DRIFT_KINDS, Finding
from state.local import atomic_write


def write_prometheus(
    path: Path,
    cluster: str,
    findings: list[Finding],
    success: bool,
    cert_expiry: dict[str, float] | None = None,
) -> None:
    """The textfile collector format, replaced atomically."""
    label = cluster.replace("\\", "\\\\").replace('"', '\\"')
    counts = {kind: 0 for kind in DRIFT_KINDS}
    for f in findings:
        counts[f.kind] += 1
    lines = [
        "# HELP sealer_drift_findings Drift findings of the last check, by kind.",
        "# TYPE sealer_drift_findings gauge",
        *(f'sealer_drift_findings{{cluster="{label}",kind="{k}"}} {n}' for k, n in counts.items()),
        "# HELP sealer_hosts_unreachable Hosts down or timed out at the last check (auth_failed "
        "and host_key_changed are findings of their own kind).",
        "# TYPE sealer_hosts_unreachable gauge",
        f'sealer_hosts_unreachable{{cluster="{label}"}} {counts["host_unreachable"]}',
        "# HELP sealer_last_check_timestamp_seconds When the last check ran (Unix time).",
        "# TYPE sealer_last_check_timestamp_seconds gauge",
        f'sealer_last_check_timestamp_seconds{{cluster="{label}"}} {time.time():.3f}',
        "# HELP sealer_check_success 1 if the last check completed, 0 if it failed.",
        "# TYPE sealer_check_success gauge",
        f'sealer_check_success{{cluster="{label}"}} {1 if success else 0}',
    ]
    if cert_expiry:
        now = time.time()
        lines += [
            "# HELP sealer_cert_expiry_seconds Seconds until the API server certificate of a "
            "master expires (negative: expired).",
            "# TYPE sealer_cert_expiry_seconds gauge",
            *(
                f'sealer_cert_expiry_seconds{{cluster="{label}",host="{ip}"}} {ends - now:.0f}'
                for ip, ends in sorted(cert_expiry.items())
            ),
        ]
    atomic_write(path, ("\n".join(lines) + "\n").encode(), mode=0o644)  # node_exporter reads it
