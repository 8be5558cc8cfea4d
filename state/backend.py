"""The contract every state backend keeps (local file, PostgreSQL, memory).

Backends store JSON documents (see state/document.py) and know nothing of planning or hosts.
`tests/test_backend_contract.py` runs one set of checks against each of them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    def describe(self) -> str:
        """Where the state lives, for messages (a path, or a URL without its password)."""

    def lock(self, operation: str, timeout: float = 0.0) -> AbstractContextManager[dict]:
        """Hold the cluster's state lock; LockError names the holder after timeout seconds."""

    def read(self, cluster: str) -> dict:
        """The document with its journal replayed; a new one (serial 0) when none is stored."""

    def append(self, doc: dict, patch: dict) -> None:
        """Record one finished action durably, and apply its patch to doc."""

    def write(self, doc: dict, previous: dict | None) -> bool:
        """Store doc if its content differs from previous, bumping the serial; True if written."""

    def store(self, doc: dict) -> None:
        """Make doc the stored state as it is, serial included (state push)."""

    def versions(self) -> list[tuple[int, str, str]]:
        """(serial, lineage, saved_at) of the earlier versions kept, newest first."""

    def read_version(self, serial: int) -> dict | None:
        """One kept earlier version, or None."""
