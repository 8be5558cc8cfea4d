"""The live view on a TTY (views/progress.LiveEvents), rendered by rich into a string: a fleet's
plan shows a bar per kind of action and only the longest running actions; a small plan lists
every running action as before."""

from __future__ import annotations

import io

from rich.console import Console

from cluster.model import Action, Plan
from views.progress import RUNNING_SHOWN, LiveEvents


def _plan(workers: int) -> Plan:
    actions = [Action("init_cluster.10.0.0.1", "init_cluster", "10.0.0.1")]
    actions += [
        Action(f"join_worker.10.0.1.{n}", "join_worker", f"10.0.1.{n}") for n in range(workers)
    ]
    return Plan("c", None, 0, tuple(actions), None, None, "10.0.0.1")


def _events() -> tuple[LiveEvents, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, color_system=None)
    return LiveEvents(console=console), out


def _screen(events: LiveEvents) -> list[str]:
    """What the live view shows now."""
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=False, color_system=None).print(events._render())
    return [line.strip() for line in out.getvalue().splitlines()]


def _run(events: LiveEvents, plan: Plan, ended: int, failing: set[int], running: int) -> None:
    for n, action in enumerate(plan.actions[: ended + running]):
        events.started(action)
        if n >= ended:
            continue
        if n in failing:
            events.failed(action, "exited with 1")
        else:
            events.finished(action)


def test_a_fleet_shows_a_bar_per_kind_and_prints_only_failures():
    events, printed = _events()
    plan = _plan(999)
    with events.executing(plan):
        _run(events, plan, ended=301, failing={10, 200}, running=100)
        screen = _screen(events)
    assert any(line.startswith("init_cluster") and "1/1 done" in line for line in screen)
    worker_bar = next(line for line in screen if line.startswith("join_worker"))
    assert worker_bar.endswith("298/999 done, 2 failed"), worker_bar
    assert sum(line.startswith("join_worker ") for line in screen) == 1 + RUNNING_SHOWN
    assert "… and 92 more" in "\n".join(screen)
    assert len(screen) < 20  # not a line per running action
    assert screen[-1] == "299 done  2 failed  0 skipped  100 running  599 pending"
    failures = [line for line in printed.getvalue().splitlines() if "✗" in line]
    assert len(failures) == 2 and "✓" not in printed.getvalue()


def test_a_small_plan_lists_every_running_action():
    events, printed = _events()
    plan = _plan(3)
    with events.executing(plan):
        _run(events, plan, ended=1, failing=set(), running=3)
        screen = _screen(events)
    assert sum(line.startswith("join_worker") for line in screen) == 3
    assert not any("done," in line or "/3 done" in line for line in screen)  # no bars
    assert "✓ init_cluster.10.0.0.1" in printed.getvalue()
