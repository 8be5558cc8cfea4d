"""The build cache: one rootfs snapshot per COPY or RUN, keyed by what produced it.

A layer's key hashes its parent's key and the instruction's inputs (the COPY sources' content,
the RUN command and its environment), so an unchanged Kubefile finds every layer, and a changed
instruction misses from there on. Layers are complete rootfs copies, written to a staging folder
and renamed into place: a killed build never leaves a half layer behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cluster.image import sealer_home


def key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_root() -> Path:
    return sealer_home() / "cache" / "layers"


@contextlib.contextmanager
def cache_lock(on_wait: Callable[[], None]):
    """One build at a time uses the cache (and the store): a second one waits its turn.

    An flock, so a killed build never leaves it held."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached(layer_key: str) -> Path | None:
    rootfs = cache_root() / layer_key / "rootfs"
    return rootfs if rootfs.is_dir() else None


def make(layer_key: str, parent: Path | None, change: Callable[[Path], None]) -> Path:
    """A new layer: a copy of parent (or empty) changed in place by change(rootfs)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        rootfs = staging / "rootfs"
        if parent is None:
            rootfs.mkdir()
        else:
            shutil.copytree(parent, rootfs, symlinks=True)
        change(rootfs)
        target = root / layer_key
        if target.exists():  # --no-cache rebuilt a layer the cache already had
            shutil.rmtree(target)
        staging.rename(target)
        return target / "rootfs"
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
