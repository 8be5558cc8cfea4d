"""The DAG scheduler (executors.scheduler.run_dag), with actions that only record themselves."""

from __future__ import annotations

import threading
import time

from cluster.model import Action
from executors.scheduler import Events, run_dag


def action(name: str, *deps: str) -> Action:
    return Action(id=name, kind="update_host", host=name, depends_on=tuple(deps))


class Recorder(Events):
    def __init__(self):
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def _add(self, kind, a):
        with self.lock:
            self.seen.append((kind, a.id))

    def started(self, a):
        self._add("started", a)

    def finished(self, a):
        self._add("finished", a)

    def failed(self, a, error):
        self._add("failed", a)

    def skipped(self, a, because):
        self._add("skipped", a)


def test_dependencies_finish_first_and_every_action_runs_once():
    actions = (action("a"), action("b", "a"), action("c", "a"), action("d", "b", "c"))
    order: list[str] = []
    outcome = run_dag(actions, lambda a: order.append(a.id), 4, Events())
    assert outcome.ok and sorted(outcome.done) == ["a", "b", "c", "d"]
    assert order[0] == "a" and order[-1] == "d" and len(order) == 4


def test_never_more_than_parallelism_at_once():
    running, peak, lock = [0], [0], threading.Lock()
    gate = threading.Barrier(2, timeout=5)  # proves two do run side by side

    def work(a):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if a.id in ("x0", "x1"):
            gate.wait()
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    actions = tuple(action(f"x{i}") for i in range(12))
    outcome = run_dag(actions, work, 2, Events())
    assert outcome.ok and peak[0] == 2


def test_a_failure_skips_exactly_its_dependents_and_independents_finish():
    actions = (
        action("root"),
        action("bad", "root"),
        action("child", "bad"),
        action("grandchild", "child"),
        action("independent", "root"),
        action("after_independent", "independent"),
    )

    def work(a):
        if a.id == "bad":
            raise RuntimeError("boom")

    events = Recorder()
    outcome = run_dag(actions, work, 3, events)
    assert outcome.failed == {"bad": "boom"}
    assert sorted(outcome.skipped) == ["child", "grandchild"]
    assert sorted(outcome.done) == ["after_independent", "independent", "root"]
    assert ("skipped", "grandchild") in events.seen and ("started", "child") not in events.seen
    assert not outcome.ok


def test_a_stop_request_lets_running_actions_finish_and_starts_no_new_one():
    stop = threading.Event()

    def work(a):
        if a.id == "first":
            stop.set()  # e.g. SIGINT while the first action runs
            time.sleep(0.05)

    actions = (action("first"), action("second", "first"), action("third", "second"))
    outcome = run_dag(actions, work, 2, Events(), stop)
    assert outcome.done == ["first"] and outcome.not_started == ["second", "third"]
    assert not outcome.failed and not outcome.ok
