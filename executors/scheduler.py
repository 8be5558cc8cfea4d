"""Run a plan's DAG: each action once its dependencies finished, at most N at once.

When an action fails, everything that depends on it (directly or not) is skipped; independent
actions still run. A stop request (SIGINT/SIGTERM) lets running actions finish and starts no
new one.

Besides the plan's actions, the DAG may hold inner nodes of the executor's own (a host's
preparation, the relay): each names its `pool` (its own limit, so preparations ahead never
take an action's place) and is not `shown` to the Events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from cluster.errors import SealerError
from cluster.model import Action

log = logging.getLogger("sealer.apply")
ACTIONS = "actions"  # the pool of the plan's actions


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> error message
    errors: dict[str, BaseException] = field(default_factory=dict)  # id -> what was raised
    skipped: list[str] = field(default_factory=list)  # a dependency failed
    not_started: list[str] = field(default_factory=list)  # stopped before their turn

    @property
    def ok(self) -> bool:
        return not (self.failed or self.skipped or self.not_started)


class Events:
    """What a progress view hears about. Every method may be called from worker threads."""

    def started(self, action: Action) -> None: ...

    def finished(self, action: Action) -> None: ...

    def failed(self, action: Action, error: str) -> None: ...

    def skipped(self, action: Action, because: str) -> None: ...


def run_dag(
    actions: tuple,
    work: Callable[[Action], None],
    parallelism: int,
    events: Events,
    stop: threading.Event | None = None,
    limits: dict[str, int] | None = None,
) -> Outcome:
    """limits: the most nodes of each inner pool running at once (the actions': parallelism)."""
    stop = stop or threading.Event()
    limit = {ACTIONS: max(1, parallelism), **(limits or {})}
    in_pool = {pool: 0 for pool in limit}

    def pool_of(node) -> str:
        return getattr(node, "pool", ACTIONS)

    def shown(node) -> bool:
        return getattr(node, "shown", True)

    by_id = {a.id: a for a in actions}
    waiting_on = {a.id: set(a.depends_on) for a in actions}
    dependents: dict[str, list[str]] = {a.id: [] for a in actions}
    for a in actions:
        for dep in a.depends_on:
            dependents[dep].append(a.id)
    outcome = Outcome()
    ready = [a.id for a in actions if not waiting_on[a.id]]
    running: dict[Future, str] = {}
    settled: set[str] = set()

    def skip_dependents_of(failed_id: str) -> None:
        stack = list(dependents[failed_id])
        while stack:
            action_id = stack.pop()
            if action_id in settled:
                continue
            settled.add(action_id)
            outcome.skipped.append(action_id)
            if shown(by_id[action_id]):
                events.skipped(by_id[action_id], failed_id)
            stack.extend(dependents[action_id])

    def next_ready() -> str | None:
        """The first ready node whose pool has room (the plan's order among them)."""
        for i, action_id in enumerate(ready):
            pool = pool_of(by_id[action_id])
            if in_pool[pool] < limit[pool]:
                return ready.pop(i)
        return None

    with ThreadPoolExecutor(max_workers=sum(limit.values())) as pool:
        while ready or running:
            while not stop.is_set() and (action_id := next_ready()) is not None:
                node = by_id[action_id]
                in_pool[pool_of(node)] += 1
                if shown(node):
                    events.started(node)
                running[pool.submit(work, node)] = action_id
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                action_id = running.pop(future)
                node = by_id[action_id]
                in_pool[pool_of(node)] -= 1
                settled.add(action_id)
                error = future.exception()
                if error is None:
                    outcome.done.append(action_id)
                    if shown(node):
                        events.finished(node)
                    for child in dependents[action_id]:
                        waiting_on[child].discard(action_id)
                        if not waiting_on[child] and child not in settled:
                            ready.append(child)
                else:
                    outcome.failed[action_id] = str(error) or type(error).__name__
                    outcome.errors[action_id] = error
                    if not isinstance(error, SealerError):  # a bug: its traceback to the log
                        log.error("%s failed: internal error", action_id, exc_info=error)
                    if shown(node):
                        events.failed(node, outcome.failed[action_id])
                    skip_dependents_of(action_id)
    outcome.not_started = [a.id for a in actions if a.id not in settled]
    return outcome
