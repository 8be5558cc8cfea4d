"""`sealer plan` and `sealer graph`: what apply would do, reading hosts but changing none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster.model import Cluster, Finding, Plan
from cluster.records import State
from operations import platforms, prechecks
from operations.common import (
    SSHSettings,
    StateRef,
    load_cluster,
    locked_state,
    on_recorded_cluster,
)
from operations.events import Listener
from operations.refresh import refresh_state
from planner import make_destroy_plan, make_plan
from state import planfile


@dataclass(frozen=True)
class PlanRequest:
    clusterfile: str
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()
    refresh: bool = True
    refresh_only: bool = False  # report the drift, plan nothing
    destroy: bool = False
    max_unavailable: str = "10%"
    out: str | None = None  # save the plan here for `sealer apply FILE`
    targets: tuple[str, ...] = ()  # --target: only these hosts (and what they need)
    replace: tuple[str, ...] = ()  # --replace: reset and join these hosts again
    skip_checks: tuple[str, ...] = ()  # --skip-check: host checks whose errors do not block


@dataclass(frozen=True)
class PlanResult:
    cluster: str
    state: State  # as recorded, before any drift is accepted
    plan: Plan | None  # None with refresh_only
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: tuple[str, ...] = ()  # the hosts `sealer check` read and judged

    @property
    def has_changes(self) -> bool:
        return bool(self.findings) or (self.plan is not None and not self.plan.empty)


def plan_for(
    cluster: Cluster,
    state: State,
    destroy: bool,
    max_unavailable: str,
    targets: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> Plan:
    if destroy:
        return make_destroy_plan(state)
    return make_plan(cluster, state, max_unavailable, replace=replace, targets=targets)


def plan(request: PlanRequest, listener: Listener) -> PlanResult:
    skip = prechecks.check_names(request.skip_checks)
    cluster = load_cluster(request.clusterfile, listener)
    spec_image_digest = cluster.image.digest  # what spec.image names (maybe an app image)
    checking = request.refresh and not request.refresh_only and not request.destroy
    warnings: list[str] = []
    checked_hosts: tuple[str, ...] = ()
    with locked_state(request.state, cluster.name, "plan") as locked:
        cluster = on_recorded_cluster(cluster, locked.state)
        root = prechecks.data_root(cluster, locked.state) if checking else ""
        refreshed = refresh_state(
            cluster, locked.state, request.ssh, request.refresh, checks_root=root
        )
        joining = prechecks.Joining()
        if checking:
            joining = prechecks.read_joining(cluster, locked.state, request.ssh)
            machines = {**refreshed.machines, **joining.machines}
            platforms.check(cluster, machines)
        made = None
        if not request.refresh_only:
            made = plan_for(
                cluster,
                refreshed.live,
                request.destroy,
                request.max_unavailable,
                request.targets,
                request.replace,
            )
            # never a plan about hosts not seen
            refreshed.check_readable(cluster, made, joining.unread)
        if checking:
            checked = prechecks.evaluate(
                cluster, locked.state, made, refreshed.checks, joining, skip
            )
            checked.raise_if_blocking(listener)  # never a plan a host cannot take
            warnings, checked_hosts = checked.warnings, tuple(checked.hosts)
    if made is not None and request.out:
        planfile.save(
            request.out,
            made.to_json(),
            {
                "clusterfile": str(Path(request.clusterfile).resolve()),
                "clusterfile_digest": cluster.source_digest,
                "image_digest": spec_image_digest,
                "state": locked.backend.describe(),
                "max_unavailable": request.max_unavailable,
            },
        )
    return PlanResult(
        cluster.name,
        locked.state,
        made,
        refreshed.findings,
        refreshed.warnings + warnings,
        checked_hosts,
    )


def graph(request: PlanRequest, listener: Listener) -> Plan:
    """The plan against the recorded state (no refresh), for its DAG."""
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "graph") as locked:
        cluster = on_recorded_cluster(cluster, locked.state)
        return plan_for(
            cluster,
            locked.state,
            request.destroy,
            request.max_unavailable,
            request.targets,
            request.replace,
        )
