"""Every digest sealer compares: image rootfs, host env, Config documents, launch commands.

Planner and executors both need them (the planner to see a change, the executors to record
what they did), so they live here, below both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

from cluster.errors import SealerError
from cluster.model import Cluster


def rootfs_digest(rootfs: Path) -> str:
    """sha256 over every file's relative path, executable bit and content, and every link's
    target (links to folders included). A FIFO, socket or device is refused: reading one
    would hang or mean nothing."""
    outer = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(rootfs):  # never follows a linked folder
        dirnames.sort()
        linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for filename in sorted(filenames + linked):
            full = os.path.join(dirpath, filename)
            rel = os.path.relpath(full, rootfs)
            if os.path.islink(full):
                outer.update(f"{rel}\0l\0{os.readlink(full)}\n".encode())
                continue
            outer.update(f"{rel}\0{file_digest(Path(full), rel)}\n".encode())
    return "sha256:" + outer.hexdigest()


def file_digest(path: Path, name: str | None = None) -> str:
    """A regular file's executable bit and content hash, as rootfs_digest counts it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens, not hangs
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SealerError(
                f"{name or path}: not a regular file, folder or symlink (a FIFO, socket or "
                f"device); refused"
            )
        inner = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            inner.update(chunk)
    mode = "x" if info.st_mode & 0o111 else "f"
    return f"{mode}\0{inner.hexdigest()}"


def env_digest(env: dict[str, str], key: str) -> str:
    """A keyed hash of the host env: the state sees a change without keeping values (secrets)."""
    canonical = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    return "hmac-sha256:" + hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def configs_digest(desired: Cluster) -> str | None:
    """The Config documents rendered into the rootfs, as a digest; None when there are none."""
    if not desired.configs:
        return None
    bodies = sorted((doc.name, json.dumps(doc.body, sort_keys=True)) for doc in desired.configs)
    return "sha256:" + hashlib.sha256(json.dumps(bodies).encode()).hexdigest()


def launch_digest(commands: tuple[str, ...], desired: Cluster) -> str:
    """What the launch commands ran with: the commands and the rootfs (image and Configs)."""
    text = "\n".join([desired.image.digest, configs_digest(desired) or "", *commands])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
