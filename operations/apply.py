"""`sealer apply` and `sealer destroy`: plan (or load a saved plan), approve, execute, journal.

Every finished action is recorded in the state as it finishes (executors/apply.py); a failed
action stops only what depends on it. The result says what was done; it never raises for a
failed action, so the caller can report it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cluster.errors import SealerError
from cluster.model import Cluster, DrainPolicy, Plan
from cluster.records import State
from executors.scheduler import Outcome
from operations import platforms, prechecks
from operations.common import (
    Locked,
    SSHSettings,
    StateRef,
    load_cluster,
    locked_state,
    on_recorded_cluster,
    ssh_driver,
    write_state,
)
from operations.events import Listener
from operations.plan import plan_for
from operations.refresh import refresh_state
from state import planfile


@dataclass(frozen=True)
class ApplyRequest:
    clusterfile: str = "Clusterfile"
    plan_file: str | None = None  # a plan saved by `sealer plan --out`: applied as it is
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings(command_timeout=600.0)
    auto_approve: bool = False
    refresh: bool = True
    refresh_only: bool = False  # accept the drift into the state, touch no host
    max_unavailable: str = "10%"
    parallelism: int = 10
    targets: tuple[str, ...] = ()  # --target: only these hosts (and what they need)
    replace: tuple[str, ...] = ()  # --replace: reset and join these hosts again
    skip_checks: tuple[str, ...] = ()  # --skip-check: host checks whose errors do not block
    drain: DrainPolicy = DrainPolicy()
    # Called once the plan is approved (or is empty), before any host is touched: the verbs
    # that edit the Clusterfile keep their edit from then on.
    approved: Callable[[], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # set: start no new action


@dataclass(frozen=True)
class ApplyResult:
    operation: str  # "apply" or "destroy"
    plan: Plan | None  # None for a refresh-only apply
    outcome: Outcome | None = None  # None when nothing ran (no changes)
    accepted: int = 0  # refresh-only: findings taken into the state

    @property
    def ok(self) -> bool:
        return self.outcome is None or self.outcome.ok

    @property
    def done(self) -> dict[str, int]:
        """Hosts added, changed and destroyed by the actions that finished."""
        if self.plan is None or self.outcome is None:
            return {"add": 0, "change": 0, "destroy": 0}
        return self.plan.summary_of(self.outcome.done)


def apply(request: ApplyRequest, listener: Listener) -> ApplyResult:
    if request.plan_file:
        return _apply_saved(request, listener)
    skip = prechecks.check_names(request.skip_checks)
    cluster = load_cluster(request.clusterfile, listener)
    checking = request.refresh and not request.refresh_only
    with locked_state(request.state, cluster.name, "apply") as locked:
        cluster = on_recorded_cluster(cluster, locked.state)
        root = prechecks.data_root(cluster, locked.state) if checking else ""
        refreshed = refresh_state(
            cluster, locked.state, request.ssh, request.refresh, request.parallelism, root
        )
        if request.refresh_only:
            listener.refreshed(refreshed.findings, refreshed.warnings)
            if not refreshed.findings:
                return ApplyResult("apply", None)
            _approve(request, listener, "accept")
            write_state(locked, refreshed.live)
            return ApplyResult("apply", None, accepted=len(refreshed.findings))
        if refreshed.findings:
            listener.drift(refreshed.findings)
        # the joining hosts' connections serve the actions too: one handshake per host
        driver = None
        if checking and prechecks.joining_hosts(cluster, locked.state):
            driver = ssh_driver(cluster, locked.state, request.ssh, pin_keys=True)
        try:
            return _plan_and_execute(
                request, listener, cluster, locked, refreshed, checking, skip, driver
            )
        finally:
            if driver is not None:
                driver.close()  # a plan refused or declined; after a run, already closed


def _plan_and_execute(request, listener, cluster, locked, refreshed, checking, skip, driver):
    """apply() once the hosts are refreshed: the joining hosts read, the plan made and
    checked against them, then run."""
    joining = prechecks.Joining()
    if checking:
        joining = prechecks.read_joining(cluster, locked.state, request.ssh, driver)
    machines = {**refreshed.machines, **joining.machines}
    platforms.check(cluster, machines)
    made = plan_for(
        cluster,
        refreshed.live,
        False,
        request.max_unavailable,
        request.targets,
        request.replace,
    )
    refreshed.check_readable(cluster, made, joining.unread)  # before any host is touched
    if checking:
        checked = prechecks.evaluate(cluster, locked.state, made, refreshed.checks, joining, skip)
        checked.raise_if_blocking(listener)  # before any host is touched
        for line in checked.warnings:
            listener.warning(line)
    if made.empty and refreshed.jump_keys:  # nothing to do, but bastions met: pin them
        pins = {**locked.state.jump_keys, **refreshed.jump_keys}
        write_state(locked, replace(locked.state, jump_keys=pins))
    return execute(
        request, listener, made, cluster, locked, refreshed.live, "apply", driver, joining
    )


def destroy(request: ApplyRequest, listener: Listener) -> ApplyResult:
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "destroy") as locked:
        cluster = on_recorded_cluster(cluster, locked.state)
        made = plan_for(cluster, locked.state, True, request.max_unavailable)
        return execute(request, listener, made, cluster, locked, locked.state, "destroy")


def _apply_saved(request: ApplyRequest, listener: Listener) -> ApplyResult:
    path = request.plan_file
    saved, sources = planfile.load(path)
    cluster = load_cluster(sources["clusterfile"], listener)
    if cluster.source_digest != sources["clusterfile_digest"]:
        raise SealerError(
            f"{path}: the Clusterfile {sources['clusterfile']} changed since "
            f"the plan was made; make a new plan"
        )
    if cluster.image.digest != sources["image_digest"]:
        raise SealerError(
            f"{path}: the ClusterImage changed since the plan was made; make a new plan"
        )
    made = Plan.from_json(saved)
    with locked_state(request.state, cluster.name, "apply") as locked:
        cluster = on_recorded_cluster(cluster, locked.state)
        check_not_stale(made, locked.state, path)
        approved = replace(request, auto_approve=True)  # a saved plan is the approval
        return execute(approved, listener, made, cluster, locked, locked.state, "apply")


def check_not_stale(plan: Plan, state: State, path: str) -> None:
    """A saved plan applies only to the state it was made against (Terraform's rule)."""
    current = state.stored_lineage
    if plan.lineage is not None and current is not None and plan.lineage != current:
        raise SealerError(
            f"Saved plan does not match the given state: {path} was made for "
            f"lineage {plan.lineage}, the state has {current}"
        )
    if plan.serial != state.serial:
        raise SealerError(
            f"Saved plan is stale: {path} can no longer be applied because the "
            f"state was changed by another operation after the plan was created "
            f"(plan serial {plan.serial}, state serial {state.serial})"
        )


def execute(
    request: ApplyRequest,
    listener: Listener,
    plan: Plan,
    cluster: Cluster,
    locked: Locked,
    state: State,
    operation: str,
    driver=None,
    joining: prechecks.Joining | None = None,
) -> ApplyResult:
    """Show the plan, get it approved, run it. state: what the plan was made against.
    driver: connections the run already opened (None: opened here); joining: what the host
    checks read of the joining hosts (not asked again)."""
    listener.planned(plan)
    if plan.empty:
        if request.approved:
            request.approved()
        return ApplyResult(operation, plan)
    _warn_drain(request, listener, plan)
    _approve(request, listener, operation)
    if request.approved:
        request.approved()
    from executors.apply import Applier, ApplyOptions  # late: a no-op apply never loads SSH

    applier = Applier(
        plan,
        cluster,
        locked.backend,
        state,
        driver or ssh_driver(cluster, state, request.ssh, pin_keys=True),
        listener,
        ApplyOptions(
            parallelism=request.parallelism,
            drain=request.drain,
            seen=joining.seen if joining else {},
            seen_rootfs=joining.rootfs if joining else "",
        ),
        stop=request.stop,
    )
    with listener.executing(plan):
        outcome = applier.run_plan()
    return ApplyResult(operation, plan, outcome)


def _warn_drain(request: ApplyRequest, listener: Listener, plan: Plan) -> None:
    """Skipping PodDisruptionBudgets is said out loud before the approval."""
    drain = request.drain
    if not any(a.spec.drains for a in plan.actions) or drain.skip:
        return
    if drain.disable_eviction:
        listener.warning(
            "--disable-eviction: pods are deleted, not evicted; PodDisruptionBudgets are "
            "ignored, so a drain may take down more replicas than the budgets allow"
        )


def _approve(request: ApplyRequest, listener: Listener, question: str) -> None:
    """Terraform's rule: ask unless auto-approved; anything but a yes cancels."""
    if not request.auto_approve and not listener.approve(question):
        raise SealerError(f"{question} cancelled.")
