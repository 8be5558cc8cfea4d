"""The state as an apply changes it: every finished action's patches are appended to the
backend's journal at once (a crash loses nothing done) and folded into the typed state the
next steps read; the whole document is written once, at the end."""

from __future__ import annotations

import threading

from cluster.records import State


class Journal:
    def __init__(self, backend, state: State):
        self.backend = backend
        self.state = state  # typed, as each finished action left it
        self._doc = state.to_json()  # the same, as the backend journals it
        self._original = state.to_json()
        self.lock = threading.Lock()

    def record(self, *patches: dict) -> None:
        with self.lock:
            for patch in patches:
                self.backend.append(self._doc, patch)
                self.state = self.state.patched(patch)

    def write(self) -> None:
        """The folded document replaces the one read at the start (the journal is cleared)."""
        self.backend.write(self._doc, self._original)
