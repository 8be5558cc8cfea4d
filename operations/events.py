"""What an operation tells its caller while it runs. The CLI implements it to render."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

from cluster.model import Finding, Plan
from executors.scheduler import Events


class Listener(Events):
    """Action events (started, finished, failed, skipped) plus an operation's own moments.

    Every method may be called from worker threads while actions run.
    """

    def warning(self, text: str) -> None:
        """Something the user should know; the operation goes on."""

    def note(self, text: str) -> None:
        """A step worth a line (a file written)."""

    def drift(self, findings: list[Finding]) -> None:
        """apply: what a refresh found, before the plan built on it."""

    def refreshed(self, findings: list[Finding], warnings: list[str]) -> None:
        """apply --refresh-only: the drift it would accept into the state."""

    def planned(self, plan: Plan) -> None:
        """The plan about to be approved and executed."""

    def approve(self, question: str) -> bool:
        """Ask the user ('apply', 'destroy', 'accept'); False cancels. Not asked with
        auto-approve."""
        return False

    def executing(self, plan: Plan) -> AbstractContextManager:
        """Held while the plan's actions run (a live view opens and closes here)."""
        return contextlib.nullcontext()


class Silent(Listener):
    """Hears everything, shows nothing, approves nothing."""
