"""Run a plan's DAG: each action once its dependencies finished, at most N at once.

When an action fails, everything that depends on it (directly or not) is skipped; independent
actions still run. A stop request (SIGINT/SIGTERM) lets running actions finish and starts no
new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from cluster.model import Action


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> error message
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
    actions: tuple[Action, ...],
    work: Callable[[Action], None],
    parallelism: int,
    events: Events,
    stop: threading.Event | None = None,
) -> Outcome:
    stop = stop or threading.Event()
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
            events.skipped(by_id[action_id], failed_id)
            stack.extend(dependents[action_id])

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while ready or running:
            while ready and len(running) < parallelism and not stop.is_set():
                action_id = ready.pop(0)
                events.started(by_id[action_id])
                running[pool.submit(work, by_id[action_id])] = action_id
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                action_id = running.pop(future)
                settled.add(action_id)
                error = future.exception()
                if error is None:
                    outcome.done.append(action_id)
                    events.finished(by_id[action_id])
                    for child in dependents[action_id]:
                        waiting_on[child].discard(action_id)
                        if not waiting_on[child] and child not in settled:
                            ready.append(child)
                else:
                    outcome.failed[action_id] = str(error) or type(error).__name__
                    events.failed(by_id[action_id], outcome.failed[action_id])
                    skip_dependents_of(action_id)
    outcome.not_started = [a.id for a in actions if a.id not in settled]
    return outcome
