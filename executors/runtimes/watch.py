"""One `kubectl get nodes --watch` on the bootstrap master, shared by every action that waits
for a node to come up.

Polling `kubectl get nodes` for each pending join starts a kubectl on the master every quarter
second for as long as joins are pending; a watch is one process that reports each change as the
API server sees it. The watch lives while someone waits on it; when it cannot run (an API
server still starting, an older kubectl), waiters fall back to polling.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from executors.driver import Followed

WATCH_ARGS = "get nodes -o json --watch --output-watch-events"


def decode_events(buffer: str) -> tuple[list[dict], str]:
    """The complete JSON values at the start of buffer (kubectl writes them one after another,
    indented or not) and the incomplete rest."""
    decoder = json.JSONDecoder()
    events, position = [], 0
    while True:
        while position < len(buffer) and buffer[position].isspace():
            position += 1
        try:
            value, position = decoder.raw_decode(buffer, position)
        except ValueError:
            return events, buffer[position:]
        if isinstance(value, dict):
            events.append(value)


class NodeWatch:
    """The cluster's nodes as one watch reports them; wait() blocks until a node qualifies."""

    def __init__(self, start: Callable[[], Followed]):
        self._start = start
        self._changed = threading.Condition()
        self._nodes: dict[str, dict] = {}
        self._stream: Followed | None = None
        self._waiters = 0
        self.finished = False  # no waiter left, or the watch ended: use a new one
        self.problem = ""  # why the watch ended, if it did on its own
        threading.Thread(target=self._read, daemon=True, name="node-watch").start()

    def join(self) -> bool:
        """Count one more waiter; False when this watch is over (make a new one)."""
        with self._changed:
            if self.finished:
                return False
            self._waiters += 1
            return True

    def leave(self) -> None:
        """The last waiter out ends the watch: nobody pays for a watch nobody reads."""
        with self._changed:
            self._waiters -= 1
            if self._waiters > 0 or self.finished:
                return
            self.finished = True
            stream = self._stream
        if stream is not None:
            stream.close()

    def wait(self, name: str, qualifies: Callable[[dict | None], bool], timeout: float):
        """True once qualifies(node) holds, False at the timeout, None if the watch ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if qualifies(self._nodes.get(name)):
                    return True
                if self.problem:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def _read(self) -> None:
        try:
            stream = self._start()
        except Exception as e:  # unreachable master, refused command: waiters poll instead
            self._end(str(e) or type(e).__name__)
            return
        with self._changed:
            if self.finished:  # every waiter left before the watch came up
                stream.close()
                return
            self._stream = stream
        buffer = ""
        try:
            for chunk in stream.chunks():
                events, buffer = decode_events(buffer + chunk.decode(errors="replace"))
                with self._changed:
                    for event in events:
                        self._apply(event)
                    self._changed.notify_all()
        except Exception as e:  # the connection broke
            self._end(str(e) or type(e).__name__)
            return
        with self._changed:
            if self.finished:  # closed by its last waiter
                return
        self._end(stream.failure() or "the watch ended")

    def _apply(self, event: dict) -> None:
        node = event.get("object") or {}
        name = node.get("metadata", {}).get("name")
        if not name:
            return
        if event.get("type") == "DELETED":
            self._nodes.pop(name, None)
        elif event.get("type") in ("ADDED", "MODIFIED"):
            self._nodes[name] = node

    def _end(self, problem: str) -> None:
        with self._changed:
            self.problem = problem
            self.finished = True
            self._changed.notify_all()
