"""What an operation shows while it runs: a live view on a TTY (rich), plain lines otherwise,
or JSON events. Each is an operations Listener."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time

from cluster.errors import SealerError
from cluster.model import Action, Finding, Plan
from operations.events import Listener
from views.text import render_drift, render_plan, render_refresh_only, use_colour


class Console(Listener):
    """An operation's moments for a person: warnings, drift, the plan, the approval prompt."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()
        self.started_at: dict[str, float] = {}

    def warning(self, text: str) -> None:
        print(f"Warning: {text}", file=sys.stderr)

    def note(self, text: str) -> None:
        print(text, file=self.stream)

    def drift(self, findings: list[Finding]) -> None:
        self.stream.write(render_drift(findings, use_colour(self.stream)))

    def refreshed(self, findings: list[Finding], warnings: list[str]) -> None:
        for warning in warnings:
            self.warning(warning)
        self.stream.write(render_refresh_only(findings, use_colour(self.stream)))

    def planned(self, plan: Plan) -> None:
        self.stream.write(render_plan(plan, use_colour(self.stream)))

    def approve(self, question: str) -> bool:
        """Terraform's rule: ask on a TTY; without one, refuse (--auto-approve skips this)."""
        if not sys.stdin.isatty():
            raise SealerError(
                f"no TTY to ask for approval; pass --auto-approve to {question} "
                f"without asking (or apply a saved plan file)"
            )
        print(
            f"\nDo you want to {question} these actions?\n  Sealer will perform the actions "
            f"described above.\n  Only 'yes' will be accepted to approve.\n",
            file=self.stream,
        )
        return input("  Enter a value: ").strip() == "yes"


SUMMARY_FROM = 50  # actions in a plan from which plain output counts them instead of listing


class PlainEvents(Console):
    """One line per start and end, for logs and cron; for a large plan (a fleet's first apply),
    counts per kind of action at every tenth instead, and a line for each failure."""

    def __init__(self, stream=sys.stdout):
        super().__init__(stream)
        self.totals: dict[str, int] = {}  # kind -> actions of that kind, in summary mode
        self.ended: dict[str, dict[str, int]] = {}  # kind -> done / failed / skipped

    def planned(self, plan: Plan) -> None:
        super().planned(plan)
        if len(plan.actions) >= SUMMARY_FROM:
            for action in plan.actions:
                self.totals[action.kind] = self.totals.get(action.kind, 0) + 1

    def _line(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def started(self, action):
        self.started_at[action.id] = time.monotonic()
        if action.host and not self.totals:
            self._line(f"{action.id}: starting...")

    def finished(self, action):
        if self.totals:
            self._count(action, "done")
        elif action.host:
            self._line(f"{action.id}: done after {self._elapsed(action):.1f}s")

    def failed(self, action, error):
        self._line(f"{action.id}: FAILED after {self._elapsed(action):.1f}s: {error}")
        self._count(action, "failed")

    def skipped(self, action, because):
        if self.totals:
            self._count(action, "skipped")
        else:
            self._line(f"{action.id}: skipped (depends on {because}, which failed)")

    def _count(self, action, outcome: str) -> None:
        total = self.totals.get(action.kind)
        if not total:
            return
        with self.lock:
            counts = self.ended.setdefault(action.kind, {"done": 0, "failed": 0, "skipped": 0})
            counts[outcome] += 1
            ended = sum(counts.values())
            before = (ended - 1) * 10 // total
        if ended * 10 // total > before or ended == total:  # each tenth, and the last
            extra = "".join(f", {counts[k]} {k}" for k in ("failed", "skipped") if counts[k])
            self._line(f"{action.kind}: {counts['done']}/{total} done{extra}")

    def _elapsed(self, action) -> float:
        return time.monotonic() - self.started_at.get(action.id, time.monotonic())


class JsonEvents(Console):
    """One JSON object per line, in the spirit of `terraform apply -json`."""

    def drift(self, findings: list[Finding]) -> None:
        """Not shown: the plan's actions carry what the drift changes."""

    def planned(self, plan: Plan) -> None:
        self.emit_line({"type": "planned", "plan": plan.to_json()})

    def note(self, text: str) -> None:
        self.emit("note", text=text)  # a line of its own would break the JSON stream

    def emit_line(self, document: dict) -> None:
        with self.lock:
            self.stream.write(json.dumps(document) + "\n")
            self.stream.flush()

    def emit(self, kind: str, **fields) -> None:
        self.emit_line({"type": kind, "timestamp": time.time(), **fields})

    def _hook(self, action: Action) -> dict:
        return {"action": action.id, "kind": action.kind, "host": action.host}

    def started(self, action):
        self.started_at[action.id] = time.monotonic()
        self.emit("apply_start", hook=self._hook(action))

    def finished(self, action):
        self.emit(
            "apply_complete",
            hook=self._hook(action),
            elapsed_seconds=round(time.monotonic() - self.started_at[action.id], 3),
        )

    def failed(self, action, error):
        self.emit("apply_errored", hook=self._hook(action), error=error)

    def skipped(self, action, because):
        self.emit("apply_skipped", hook=self._hook(action), because=because)


RUNNING_SHOWN = 8  # running actions listed in a fleet's live view; the rest are counted


class LiveEvents(Console):
    """A rich live view: running actions with host and elapsed time, and the counts. For a
    large plan (a fleet's first apply), a progress bar per kind of action, only the longest
    running actions, and a printed line only for what failed."""

    def __init__(self, stream=sys.stdout, console=None):
        from rich.console import Console as RichConsole

        super().__init__(stream)
        self.total = 0
        self.running: dict[str, tuple[Action, float]] = {}
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        self.kinds: dict[str, int] = {}  # kind -> actions of that kind, for a large plan
        self.ended: dict[str, dict[str, int]] = {}  # kind -> done / failed / skipped
        self.console = console or RichConsole()

    @contextlib.contextmanager
    def executing(self, plan: Plan):
        from rich.live import Live

        self.total = len(plan.actions)
        if self.total >= SUMMARY_FROM:
            for action in plan.actions:
                self.kinds[action.kind] = self.kinds.get(action.kind, 0) + 1
        live = Live(
            self._render(), console=self.console, refresh_per_second=8, get_renderable=self._render
        )
        with live:
            yield

    def _render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("running")
        table.add_column("host")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        with self.lock:
            running = sorted(self.running.values(), key=lambda pair: pair[1])
            shown = running[:RUNNING_SHOWN] if self.kinds else running
            for action, since in shown:
                table.add_row(action.kind, action.host or "", f"{now - since:.1f}s")
            if len(shown) < len(running):
                table.add_row(f"… and {len(running) - len(shown)} more", "", "")
            c = self.counts
            pending = self.total - sum(c.values()) - len(self.running)
            bars = self._bars() if self.kinds else None
        counts = Text.from_markup(
            f"[green]{c['done']} done[/]  [red]{c['failed']} failed[/]  "
            f"[yellow]{c['skipped']} skipped[/]  {len(running)} running  {pending} pending"
        )
        return Group(*([bars] if bars is not None else []), table, counts)

    def _bars(self):
        """A bar per kind of action: how many of them ended, and how many of those failed."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        bars = Table(box=None, show_header=False)
        for _ in range(3):
            bars.add_column()
        for kind, total in self.kinds.items():
            ended = self.ended.get(kind, {})
            count = f"{ended.get('done', 0)}/{total} done"
            count += "".join(f", {ended[k]} {k}" for k in ("failed", "skipped") if ended.get(k))
            bar = ProgressBar(total=total, completed=sum(ended.values()), width=40)
            bars.add_row(kind, bar, count)
        return bars

    def started(self, action):
        with self.lock:
            self.running[action.id] = (action, time.monotonic())

    def _end(self, action, key: str, text: str | None):
        with self.lock:
            self.running.pop(action.id, None)
            self.counts[key] += 1
            ended = self.ended.setdefault(action.kind, {})
            ended[key] = ended.get(key, 0) + 1
        if text:
            self.console.print(text, highlight=False)

    def finished(self, action):
        quiet = self.kinds or not action.host  # a fleet's bars count what went well
        self._end(action, "done", None if quiet else f"[green]✓[/] {action.id}")

    def failed(self, action, error):
        self._end(action, "failed", f"[red]✗ {action.id}: {error}[/]")

    def skipped(self, action, because):
        text = None if self.kinds else f"[yellow]- {action.id} skipped ({because} failed)[/]"
        self._end(action, "skipped", text)
