"""Apply progress: a live view on a TTY (rich), plain lines otherwise, or JSON events."""

from __future__ import annotations

import json
import sys
import threading
import time

from cluster.model import Action
from executors.scheduler import Events


def _target(action: Action) -> str:
    return action.host or action.id


class PlainEvents(Events):
    """One line per start and end, for logs and cron."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()
        self.started_at: dict[str, float] = {}

    def _line(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def started(self, action):
        self.started_at[action.id] = time.monotonic()
        if action.host:
            self._line(f"{action.id}: starting...")

    def finished(self, action):
        if action.host:
            self._line(f"{action.id}: done after {self._elapsed(action):.1f}s")

    def failed(self, action, error):
        self._line(f"{action.id}: FAILED after {self._elapsed(action):.1f}s: {error}")

    def skipped(self, action, because):
        self._line(f"{action.id}: skipped (depends on {because}, which failed)")

    def _elapsed(self, action) -> float:
        return time.monotonic() - self.started_at.get(action.id, time.monotonic())


class JsonEvents(Events):
    """One JSON object per line, in the spirit of `terraform apply -json`."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()
        self.started_at: dict[str, float] = {}

    def emit(self, kind: str, **fields) -> None:
        with self.lock:
            self.stream.write(json.dumps({"type": kind, "timestamp": time.time(), **fields}) + "\n")
            self.stream.flush()

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


class LiveEvents(Events):
    """A rich live view: running actions with host and elapsed time, and the counts."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.live import Live

        self.total = total
        self.lock = threading.Lock()
        self.running: dict[str, tuple[Action, float]] = {}
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        self.console = Console()
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=8, get_renderable=self._render
        )

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def _render(self):
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("running")
        table.add_column("host")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        with self.lock:
            for action, since in list(self.running.values()):
                table.add_row(action.kind, action.host or "", f"{now - since:.1f}s")
            c = self.counts
            pending = self.total - sum(c.values()) - len(self.running)
        table.caption = (
            f"[green]{c['done']} done[/]  [red]{c['failed']} failed[/]  "
            f"[yellow]{c['skipped']} skipped[/]  {len(self.running)} running  "
            f"{pending} pending"
        )
        return table

    def started(self, action):
        with self.lock:
            self.running[action.id] = (action, time.monotonic())

    def _end(self, action, key: str, text: str | None):
        with self.lock:
            self.running.pop(action.id, None)
            self.counts[key] += 1
        if text:
            self.console.print(text, highlight=False)

    def finished(self, action):
        self._end(action, "done", f"[green]✓[/] {action.id}" if action.host else None)

    def failed(self, action, error):
        self._end(action, "failed", f"[red]✗ {action.id}: {error}[/]")

    def skipped(self, action, because):
        with self.lock:
            self.counts["skipped"] += 1
        self.console.print(f"[yellow]- {action.id} skipped ({because} failed)[/]")
