"""What both state backends share: errors, the document check, lock info, when to write."""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid

from cluster.errors import SealerError
from cluster.records import StateFormatError, check_document
from state.document import content, touch


class StateError(SealerError):
    pass


class LockError(StateError):
    pass


class BackendBase:
    """What every backend shares: the write rule. Subclasses read, lock, append and store."""

    _journal_pending = False  # finished actions recorded but not yet folded into the state

    def store(self, doc: dict) -> None:
        raise NotImplementedError

    def write(self, doc: dict, previous: dict | None) -> bool:
        """Store doc if its content differs from previous; bump the serial. True if written.

        previous is the document as read (journal replayed); its serial is the stored one.
        """
        if previous is not None and not self._journal_pending and content(doc) == content(previous):
            return False
        doc["serial"] = (previous or {}).get("serial", doc.get("serial", 0)) + 1
        touch(doc)
        self.store(doc)
        return True


def parse(raw: bytes, where: str, cluster: str | None = None) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        why = "nested too deep to read" if isinstance(e, RecursionError) else e
        raise StateError(
            f"{where}: the state is not valid JSON ({why}); restore it from "
            f"{where}.backup or move it away"
        ) from None
    try:
        check_document(doc, where)
    except StateFormatError as e:
        raise StateError(str(e)) from None
    if cluster is not None and doc.get("cluster") != cluster:
        raise StateError(
            f"{where}: this state belongs to cluster {doc.get('cluster')!r}, "
            f"not {cluster!r}; pass the right --state"
        )
    return doc


def lock_info(operation: str, path: str) -> dict:
    return {
        "ID": str(uuid.uuid4()),
        "Operation": operation,
        "Who": f"{_user()}@{socket.gethostname()}",
        "PID": os.getpid(),
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Path": path,
    }


def lock_held_message(where: str, info: dict) -> str:
    """The error of a run that found the state locked, with what is known of the holder."""
    held = (
        ", ".join(
            f"{k}={info[k]}" for k in ("ID", "Operation", "Who", "PID", "Created") if k in info
        )
        or "holder unknown"
    )
    return (
        f"{where}: the state is locked by another sealer run ({held}); "
        f"wait for it, or retry with --lock-timeout"
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in minimal containers
        return str(os.getuid())
