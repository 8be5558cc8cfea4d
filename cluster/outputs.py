"""Files sealer writes where the user says (-o FILE): never through a link, never half-written.

A symbolic link at the path is refused: following it would let whoever planted it choose which
file a kubeconfig or an etcd snapshot (the cluster's secrets) lands in, or is truncated. The
content goes to a temporary file in the same folder, mode 0600, then is renamed over the path:
a crash leaves the old file or the new one, and an existing file's wider mode is not kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from cluster.errors import SealerError


def write_output(path: str | Path, data: bytes | str, mode: int = 0o600) -> None:
    path = Path(path)
    content = data.encode() if isinstance(data, str) else data
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise SealerError(
                f"{path}: is a symbolic link; refused (sealer does not write through links: "
                f"give the real path, or remove the link)"
            )
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise SealerError(f"{path}: cannot write it: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        reason = "the disk is full" if e.errno == errno.ENOSPC else e.strerror
        raise SealerError(f"{path}: cannot write it: {reason}") from None
