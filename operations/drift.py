"""`sealer drift`: a read-only refresh for cron. Findings, never a change."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import SealerError
from cluster.model import Finding
from cluster.records import State
from operations.common import (
    SSHSettings,
    StateRef,
    load_cluster,
    locked_state,
    on_recorded_cluster,
)
from operations.events import Listener
from operations.refresh import refresh_state


@dataclass(frozen=True)
class DriftRequest:
    clusterfile: str
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()


@dataclass(frozen=True)
class DriftResult:
    cluster: str
    state: State  # as recorded (lineage, serial)
    findings: list[Finding]
    warnings: list[str]
    cert_expiry: dict[str, float]  # master -> its API server certificate's notAfter


def check_drift(request: DriftRequest, listener: Listener) -> DriftResult:
    """Raises SealerError with a `cluster` attribute (its name, or "unknown"): the metrics of
    a failed check still name their cluster."""
    name = "unknown"
    try:
        cluster = load_cluster(request.clusterfile, listener)
        name = cluster.name
        with locked_state(request.state, cluster.name, "drift") as locked:
            cluster = on_recorded_cluster(cluster, locked.state)
            refreshed = refresh_state(cluster, locked.state, request.ssh)
    except SealerError as e:
        e.cluster = name
        raise
    return DriftResult(
        cluster.name,
        locked.state,
        refreshed.findings,
        refreshed.warnings,
        refreshed.cert_expiry,
    )
