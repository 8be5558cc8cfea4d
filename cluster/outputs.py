"""Whole files, replaced at once: a temporary file beside the path, renamed over it.

A reader (or a crash) sees the old file or the new one, never half of it; the rename replaces
whatever is at the path (a link included) instead of writing through it. The state, the OCI
store and the files sealer writes where the user says (-o FILE) all write this way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cluster.errors import SealerError


@contextlib.contextmanager
def replacing(path: Path, mode: int = 0o644) -> Iterator[tuple[BinaryIO, Path]]:
    """(the temporary file open for writing, its path), renamed over path with mode when the
    block ends well, removed when it does not."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """path holds data, on disk (fsync) before it takes the name."""
    with replacing(path, mode) as (f, _):
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_output(path: str | Path, data: bytes | str, mode: int = 0o600) -> None:
    """A file where the user said (kubeconfig -o, etcd backup -o, import --discover): a
    symbolic link at the path is refused (following it would let whoever planted it choose
    where a kubeconfig or an etcd snapshot, the cluster's secrets, lands), and an existing
    file's wider mode is not kept."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise SealerError(
                f"{path}: is a symbolic link; refused (sealer does not write through links: "
                f"give the real path, or remove the link)"
            )
    try:
        write_atomic(path, data.encode() if isinstance(data, str) else data, mode)
    except OSError as e:
        raise SealerError(f"{path}: cannot write it: {reason(e)}") from None


def reason(error: OSError) -> str:
    return "the disk is full" if error.errno == errno.ENOSPC else str(error.strerror or error)
