"""The local state backend: a JSON file written atomically, guarded by an OS lock.

- Writes go to a temp file, are fsynced and renamed over the state: a crash leaves the old or the
  new document, never a partial one.
- The lock is an fcntl lock on `<state>.lock`, which the kernel drops when the holder dies, so a
  killed run can never leave it stuck. The lock file also carries who holds it.
- The first write that changes content keeps the document as read at start in `<state>.backup`.
- During apply, each finished action appends one patch to `<state>.journal` (fsynced), so the
  bytes written grow with the number of actions, not with actions x hosts. Reading replays the
  journal; the next full write folds it in and removes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path

from cluster.outputs import reason, write_atomic
from state.common import (
    BackendBase,
    LockError,
    StateError,
    lock_held_message,
    lock_info,
    parse,
)
from state.document import apply_patch, new_document


class LocalBackend(BackendBase):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._as_read: bytes | None = None  # the file as first read by this command
        self._backed_up = False
        self._lock_fd: int | None = None
        self._journal_pending = False  # entries on disk not yet folded into the state file

    def describe(self) -> str:
        return str(self.path)

    # ---- locking ----

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0):
        lock_path = self.path.with_name(self.path.name + ".lock")
        _ensure_folder(lock_path.parent)
        fd = _open_no_link(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockError(_lock_held_message(lock_path, self.path)) from None
                    time.sleep(0.1)
            self._remove_orphan_temp_files()
            info = lock_info(operation, str(self.path))
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            self._lock_fd = fd
            yield info
        finally:
            if self._lock_fd == fd:
                os.ftruncate(fd, 0)
                self._lock_fd = None
            os.close(fd)  # closing drops the flock

    def _remove_orphan_temp_files(self) -> None:
        """Temp files of a writer killed mid-write; safe to remove while we hold the lock."""
        for orphan in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                orphan.unlink()

    # ---- reading ----

    def read(self, cluster: str) -> dict:
        """The state document, or a new empty one (not yet written) when there is none."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._as_read = b""
            doc = new_document(cluster)
            self._replay_journal(doc)  # a first apply that was killed before its first write
            return doc
        except OSError as e:
            raise StateError(f"{self.path}: cannot read the state: {e.strerror}") from None
        if self._as_read is None:
            self._as_read = raw
        doc = parse(raw, str(self.path), cluster)
        self._replay_journal(doc)
        return doc

    # ---- earlier versions: the local file keeps one, its backup ----

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".backup")

    def versions(self) -> list[tuple[int, str, str]]:
        doc = self._backup()
        return [(doc["serial"], doc["lineage"], doc.get("updated_at", ""))] if doc else []

    def read_version(self, serial: int) -> dict | None:
        doc = self._backup()
        return doc if doc and doc["serial"] == serial else None

    def _backup(self) -> dict | None:
        try:
            return parse(self.backup_path.read_bytes(), str(self.backup_path))
        except (FileNotFoundError, StateError):
            return None

    # ---- the journal of finished actions ----

    @property
    def journal_path(self) -> Path:
        return self.path.with_name(self.path.name + ".journal")

    def _replay_journal(self, doc: dict) -> None:
        try:
            lines = self.journal_path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        adopt = doc["serial"] == 0  # a first apply killed before it wrote: take its lineage
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                break  # a line cut by a crash: every entry before it is whole
            if adopt and entry.get("serial") == 0:
                doc["lineage"], adopt = entry.get("lineage"), False
            if entry.get("lineage") != doc["lineage"] or entry.get("serial") != doc["serial"]:
                continue  # made against another document: already folded in, or foreign
            apply_patch(doc, entry["patch"])
            self._journal_pending = True

    def append(self, doc: dict, patch: dict) -> None:
        """Record one finished action durably, and apply it to doc."""
        apply_patch(doc, patch)
        entry = {"lineage": doc["lineage"], "serial": doc["serial"], "patch": patch}
        _ensure_folder(self.path.parent)
        try:
            fd = _open_no_link(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._journal_pending = True
        except OSError as e:
            raise StateError(
                f"{self.journal_path}: cannot record a finished action: {e.strerror}"
            ) from None

    # ---- writing ----

    def store(self, doc: dict) -> None:
        """Make doc the state as it is (serial included); the first replaced file is backed up."""
        data = (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()
        if not self._backed_up and self._as_read:
            atomic_write(self.backup_path, self._as_read)
            self._backed_up = True
        atomic_write(self.path, data)
        with contextlib.suppress(FileNotFoundError):  # its entries now live in the state
            self.journal_path.unlink()
        self._journal_pending = False


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write data to path so that a crash leaves either the old file or the new one."""
    _ensure_folder(path.parent)
    try:
        write_atomic(path, data, mode)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise StateError(
            f"{path}: cannot write the state: {reason(e)}; the old state is unchanged"
        ) from None


def _lock_held_message(lock_path: Path, state_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return lock_held_message(str(state_path), info)


def _open_no_link(path: Path, flags: int) -> int:
    """Open a file of the state's own (lock, journal); a symlink planted there is refused,
    never followed (it could make sealer truncate or append to another file)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StateError(f"{path}: is a symlink; refused (remove it)") from None
        raise StateError(f"{path}: cannot open: {e.strerror}") from None


def _ensure_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StateError(f"{folder}: cannot create the state folder: {e.strerror}") from None
