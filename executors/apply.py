"""Apply a plan: run its DAG on the hosts and record every finished action in the state.

The Applier is a dispatcher. It builds the run's DAG: the plan's actions, and before each
action that needs its host prepared (executors/preparation.py) a preparation node of its own,
which runs ahead while the action waits on the control plane; with the relay, one node that
sends the image through the hosts before any preparation. It runs that DAG
(executors/scheduler.py), hands each action to its kind's step (executors/steps/), and journals
the patches the step returns (executors/journal.py). A failed action records nothing, so the
next plan proposes it again; its dependents are skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cluster.actions import Kind, action_id
from cluster.digests import configs_digest
from cluster.model import Action, Cluster, DrainPolicy, Image, Plan
from cluster.records import State, set_field, update_host
from executors import preparation
from executors.context import ApplyContext
from executors.driver import Driver
from executors.facts import Seen
from executors.fanout import fan_out
from executors.journal import Journal
from executors.scheduler import Events, Outcome, run_dag
from executors.steps import STEPS

log = logging.getLogger("sealer.apply")
PREPARE = "prepare"  # the pool of the preparation nodes


@dataclass
class ApplyOptions:
    parallelism: int = 10
    drain: DrainPolicy = DrainPolicy()
    relay: bool = os.environ.get("SEALER_RELAY", "1") != "0"  # executors/relay.py
    # The joining hosts as the plan's host checks read them moments before (name, the marker
    # of the rootfs at seen_rootfs, machine): the preparations do not ask them again.
    seen: dict[str, Seen] = dataclasses.field(default_factory=dict)
    seen_rootfs: str = ""


@dataclass(frozen=True)
class Inner:
    """A node of the run's DAG that is not one of the plan's actions (not shown, not in the
    outcome): it runs `work`, in a pool of its own."""

    id: str
    depends_on: tuple[str, ...]
    work: Callable[[], None]
    pool: str = PREPARE
    shown: bool = False


class Applier:
    def __init__(
        self,
        plan: Plan,
        desired: Cluster | None,
        backend,
        state: State,
        driver: Driver,
        events: Events,
        options: ApplyOptions,
        image: Image | None = None,
        stop: threading.Event | None = None,
    ):
        self.plan = plan
        self.driver = driver
        self.events = events
        self.options = options
        self.journal = Journal(backend, state)
        self.ctx = ApplyContext(plan, desired, self.journal, driver, events, options.drain, image)
        if options.seen_rootfs == self.ctx.rootfs:  # the marker read is of this rootfs
            self.ctx.seen = dict(options.seen)
        self.stop = stop or threading.Event()  # set: start no new action

    def run_plan(self) -> Outcome:
        # --parallelism, as far as the open-file limit allows; as many preparations ahead
        width = fan_out(len(self.plan.actions) or 1, self.options.parallelism)
        nodes = self._run_graph()
        try:
            outcome = run_dag(nodes, self._work, width, self.events, self.stop, {PREPARE: width})
            outcome = _plan_only(outcome, {a.id for a in self.plan.actions})
            if outcome.ok:
                self.ctx.record(*self._finish())
            return outcome
        finally:
            self.driver.close()
            self.journal.write()

    def _run_graph(self) -> list:
        """The plan's actions, each prepared host's action after its preparation node; those
        after the relay node when it runs, else after the first master's (its copy goes first,
        alone: the whole cluster waits on it)."""
        actions = self.plan.actions
        # A host that leaves before it joins again (--replace, a role change) is prepared in
        # its join, after its removal cleaned it, not ahead.
        leaving = {a.host for a in actions if a.kind in (Kind.DELETE_MASTER, Kind.DELETE_WORKER)}
        early = [a for a in actions if a.spec.prepares_host and a.host not in leaving]
        hosts = list(dict.fromkeys(a.host for a in early))
        inner: list[Inner] = []
        relayed: tuple[str, ...] = ()  # what every preparation waits for: the relay, if any
        if self.options.relay and self.ctx.image and len(hosts) >= preparation.RELAY_MIN_HOSTS:
            inner.append(Inner("relay", (), lambda: self._relay(hosts)))
            relayed = ("relay",)
        init = action_id(Kind.INIT_CLUSTER, self.plan.bootstrap_master)
        first = (_prepare_id(init),) if any(a.id == init for a in early) else ()
        prepared: dict[str, str] = {}
        for action in early:  # in plan order: the first master's host goes first
            after = relayed if relayed or action.id == init else first
            node = Inner(_prepare_id(action.id), after, functools.partial(self._prepare, action))
            inner.append(node)
            prepared[action.id] = node.id
        return inner + [
            dataclasses.replace(a, depends_on=(*a.depends_on, prepared[a.id]))
            if a.id in prepared
            else a
            for a in actions
        ]

    def _relay(self, hosts: list[str]) -> None:
        try:
            preparation.relay_rootfs(self.ctx, hosts)
        except Exception:  # a relay that failed whole: each host is sent the image directly
            log.info("relay failed; each host is sent the image directly", exc_info=True)
            self.ctx.seen, self.ctx.receipts = {}, {}  # the preparations look again

    def _prepare(self, action: Action) -> None:
        """Its failure is kept for the action, which reports it (executors/preparation.py)."""
        try:
            self.ctx.prepared[action.id] = (preparation.for_action(self.ctx, action), None)
        except Exception as error:
            self.ctx.prepared[action.id] = ("", error)

    def _work(self, node) -> None:
        if isinstance(node, Inner):
            node.work()
        else:
            self.execute(node)

    def execute(self, action: Action) -> None:
        started = time.monotonic()
        log.debug("%s: started", action.id)
        self.ctx.record(*STEPS[action.kind](self.ctx, action))
        record = self.ctx.state.hosts.get(action.host or "")
        if record is not None and not record.host_key:  # forgotten: pin the key seen now
            key = self.driver.host(action.host).host_key()
            self.ctx.record(update_host(action.host, host_key=key))
        self._pin_jumps()
        log.debug("%s: done after %.2fs", action.id, time.monotonic() - started)

    def _pin_jumps(self) -> None:
        """The bastions this run reached are pinned at first contact, as hosts are."""
        seen = getattr(self.driver, "gateways", None)
        pinned = self.ctx.state.jump_keys
        new = {n: k for n, k in (seen.seen if seen else {}).items() if n not in pinned}
        if new:
            self.ctx.record(set_field("jump_keys", {**pinned, **new}))

    def _finish(self) -> list[dict]:
        """The cluster-wide records, once every action finished."""
        ctx = self.ctx
        if self.plan.destroy:
            return [
                set_field("image", None),
                set_field("bootstrap_master", None),
                set_field("launch_digest", None),
                set_field("configs_digest", None),
                set_field("control_plane", None),
                set_field("apps", {}),
            ]
        if self.plan.targets and ctx.state.image:
            # A targeted apply changed some hosts only: the cluster's image, configs and
            # control plane stay as recorded, so the next full plan still brings the others.
            return []
        return [
            set_field("image", self.plan.image),
            set_field("configs_digest", configs_digest(ctx.desired)),
            set_field("control_plane", ctx.control_plane()),
        ]


def _prepare_id(action: str) -> str:
    return f"prepare {action}"  # a space: never an action id


def _plan_only(outcome: Outcome, ids: set[str]) -> Outcome:
    """The outcome of the plan's actions (the inner nodes never fail: their errors are kept
    for the actions that need them)."""
    return Outcome(
        done=[i for i in outcome.done if i in ids],
        failed=outcome.failed,
        errors=outcome.errors,
        skipped=[i for i in outcome.skipped if i in ids],
        not_started=[i for i in outcome.not_started if i in ids],
    )
