"""Plain-line progress (views/progress.PlainEvents): a line per action for a small plan, counts
per kind and a line per failure for a fleet's."""

from __future__ import annotations

import io

from cluster.model import Action, Plan
from views.progress import SUMMARY_FROM, PlainEvents


def _plan(workers: int) -> Plan:
    actions = [Action("init_cluster.10.0.0.1", "init_cluster", "10.0.0.1")]
    actions += [
        Action(f"join_worker.10.0.1.{n}", "join_worker", f"10.0.1.{n}") for n in range(workers)
    ]
    return Plan("c", None, 0, tuple(actions), None, None, "10.0.0.1")


def _run(plan: Plan, failing: set[int]) -> list[str]:
    out = io.StringIO()
    events = PlainEvents(out)
    events.planned(plan)
    start = len(out.getvalue())
    for n, action in enumerate(plan.actions):
        events.started(action)
        if n in failing:
            events.failed(action, "exited with 1")
        else:
            events.finished(action)
    return out.getvalue()[start:].splitlines()


def test_a_small_plan_has_a_line_per_start_and_end():
    lines = _run(_plan(3), failing=set())
    assert len(lines) == 8 and lines[-1].startswith("join_worker.10.0.1.2: done after")


def test_a_fleet_plan_is_counted_per_kind_with_a_line_per_failure():
    lines = _run(_plan(999), failing={10, 500})
    assert len(lines) < 30  # not 2,000 lines
    assert sum("FAILED" in line for line in lines) == 2
    assert lines[0] == "init_cluster: 1/1 done"
    assert lines[1].startswith("join_worker.10.0.1.9: FAILED after")
    assert lines[-1] == "join_worker: 997/999 done, 2 failed"
    assert "join_worker: 99/999 done, 1 failed" in lines  # the first tenth
    assert SUMMARY_FROM <= 1000
