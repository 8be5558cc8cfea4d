"""A state backend held in memory: for tests of the operations, and nothing on disk.

It keeps the same rules as the others (journal replayed on read, serial bumped on write, one
earlier version kept, one holder of the lock at a time).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time

from state.common import BackendBase, LockError, lock_held_message, lock_info
from state.document import apply_patch, new_document


class MemoryBackend(BackendBase):
    def __init__(self, name: str = "memory"):
        self.name = name
        self.stored: dict | None = None
        self.earlier: list[dict] = []
        self.journal: list[tuple[str, int, dict]] = []  # (lineage, serial, patch)
        self._lock = threading.Lock()
        self._holder: dict = {}
        self._journal_pending = False

    def describe(self) -> str:
        return f"memory:{self.name}"

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0):
        deadline = time.monotonic() + timeout
        while not self._lock.acquire(timeout=0.05):
            if time.monotonic() >= deadline:
                raise LockError(lock_held_message(self.describe(), self._holder))
        self._holder = lock_info(operation, self.describe())
        try:
            yield self._holder
        finally:
            self._holder = {}
            self._lock.release()

    def read(self, cluster: str) -> dict:
        doc = copy.deepcopy(self.stored) if self.stored else new_document(cluster)
        if not self.stored and self.journal:  # a first apply that stopped before its write
            doc["lineage"] = self.journal[0][0]
        patches = [
            p for lin, ser, p in self.journal if (lin, ser) == (doc["lineage"], doc["serial"])
        ]
        for patch in patches:
            apply_patch(doc, patch)
        self._journal_pending = bool(patches)
        return doc

    def append(self, doc: dict, patch: dict) -> None:
        apply_patch(doc, patch)
        self.journal.append((doc["lineage"], doc["serial"], copy.deepcopy(patch)))
        self._journal_pending = True

    def store(self, doc: dict) -> None:
        if self.stored:
            self.earlier.insert(0, self.stored)
        self.stored = copy.deepcopy(doc)
        self.journal.clear()
        self._journal_pending = False

    def versions(self) -> list[tuple[int, str, str]]:
        return [(d["serial"], d["lineage"], d.get("updated_at", "")) for d in self.earlier]

    def read_version(self, serial: int) -> dict | None:
        return next((copy.deepcopy(d) for d in self.earlier if d["serial"] == serial), None)
