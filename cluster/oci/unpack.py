"""An image's layers, applied in order into one rootfs folder, as the image-spec says.

Each layer is a tar (gzip'd or not). Its whiteouts act on the layers below it before its own
files land: `.wh.NAME` removes NAME, `.wh..wh..opq` empties its folder. Nothing in a layer
reaches outside the rootfs: absolute paths, `..`, device files and FIFOs are refused, links are
extracted by tarfile's `data` filter (none pointing out), and a whiteout is resolved without
following any symlink. Each layer is hashed while it is read and must match its digest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from cluster import beneath
from cluster.errors import SealerError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_UNPACKED_BYTES = 64 * 2**30
MAX_UNPACK_RATIO = 100
MAX_ENTRIES = 2_000_000
MAX_PATH_DEPTH = 256


class UnpackError(SealerError):
    pass


class _Hashing:
    """A file read through sha256, so the layer is checked as it is unpacked."""

    def __init__(self, f):
        self.f, self.hash, self.read_bytes = f, hashlib.sha256(), 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        self.read_bytes += len(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass


def apply_layer(rootfs: Path, blob: Path, digest: str, where: str) -> None:
    """Apply one layer blob onto rootfs (which already holds the layers below)."""
    with open(blob, "rb") as raw:
        hashing = _Hashing(raw)
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        stream = gzip.GzipFile(fileobj=hashing) if magic == b"\x1f\x8b" else hashing
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                _apply(tar, rootfs, blob, where)
            hashing.drain()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise UnpackError(
                f"{where}: layer {digest[:19]} is not a readable tar ({reason})"
            ) from None
    if "sha256:" + hashing.hash.hexdigest() != digest:
        raise UnpackError(f"{where}: layer {digest} does not match its digest; refused")


def _apply(tar: tarfile.TarFile, rootfs: Path, blob: Path, where: str) -> None:
    packed = max(blob.stat().st_size, 1)
    unpacked = entries = 0
    for member in tar:  # streamed: one pass, whiteouts before the files that follow
        entries += 1
        name = _safe_name(member.name, where)
        unpacked += max(member.size, 0)
        if (
            entries > MAX_ENTRIES
            or unpacked > MAX_UNPACKED_BYTES
            or (unpacked > 64 * 2**20 and unpacked / packed > MAX_UNPACK_RATIO)
        ):
            raise UnpackError(f"{where}: a layer unpacks to more than the limits allow; refused")
        base = name.name
        if base == OPAQUE:
            _empty_folder(rootfs, name.parent, where)
            continue
        if base.startswith(WHITEOUT):
            _remove(rootfs, name.parent / base[len(WHITEOUT) :], where)
            continue
        _check_member(member, name, where)
        _make_parents(rootfs, name.parent, where)  # never through a link: tarfile would follow
        _remove_unless_folder(rootfs, name, member, where)
        _tame(member)
        try:
            tar.extract(member, rootfs, set_attrs=True, **EXTRACT_OPTIONS)
        except FILTER_ERRORS as e:
            raise UnpackError(f"{where}: {e}; refused") from None


# Python's own check of each member too, where it has one (3.11.4+; Debian 12 has 3.11.2):
# "tar" refuses what this module refuses, and leaves the modes as _tame set them.
EXTRACT_OPTIONS = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
FILTER_ERRORS = getattr(tarfile, "FilterError", ())


def _check_member(member: tarfile.TarInfo, name: PurePosixPath, where: str) -> None:
    """What tarfile's data filter refuses, checked here (the Python of Debian 12 has none):
    device files and FIFOs, links to absolute paths or out of the rootfs."""
    if member.isdev():
        raise UnpackError(f"{where}: device file in a layer: {member.name!r}; refused")
    if not (member.issym() or member.islnk()):
        return
    target = member.linkname
    if target.startswith("/"):
        raise UnpackError(
            f"{where}: {member.name!r} is a link to an absolute path ({target!r}); refused"
        )
    base = name.parent if member.issym() else PurePosixPath(".")  # hard links: from the top
    resolved = posixpath.normpath(posixpath.join(str(base), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnpackError(
            f"{where}: {member.name!r} links to {target!r}, outside the destination; refused"
        )


def _tame(member: tarfile.TarInfo) -> None:
    """Owned by whoever unpacks (root on the hosts), no setuid, setgid or sticky bit, nothing
    writable by group or others."""
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode &= 0o755


def _make_parents(rootfs: Path, folder: PurePosixPath, where: str) -> None:
    """An entry's folders, made where its layer does not list them, each reached without
    following a link: a layer cannot write through a link a lower layer planted."""
    try:
        beneath.make_folders(rootfs, str(folder))
    except beneath.LinkRefused:
        raise UnpackError(
            f"{where}: an entry reaches through {folder} (a link or a file); refused"
        ) from None


def _safe_name(name: str, where: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise UnpackError(f"{where}: unsafe path in a layer: {name!r}; refused")
    parts = [p for p in path.parts if p != "."]
    if len(parts) > MAX_PATH_DEPTH:
        raise UnpackError(f"{where}: a path in a layer is {len(parts)} levels deep; refused")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


@contextlib.contextmanager
def _parent(rootfs: Path, folder: PurePosixPath, where: str):
    """rootfs/folder's descriptor, reached without following a link; None when it is absent."""
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(beneath.folder(rootfs, str(folder)))
        except FileNotFoundError:
            fd = None
        except beneath.LinkRefused:
            raise UnpackError(
                f"{where}: a whiteout reaches through {folder} (a link or a file); refused"
            ) from None
        yield fd


def _remove(rootfs: Path, path: PurePosixPath, where: str) -> None:
    with _parent(rootfs, path.parent, where) as fd:
        if fd is not None:
            _remove_at(fd, path.name)


def _remove_at(fd: int, name: str) -> None:
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        try:
            for entry in os.listdir(child):
                _remove_at(child, entry)
        finally:
            os.close(child)
        os.rmdir(name, dir_fd=fd)
    else:
        os.unlink(name, dir_fd=fd)


def _empty_folder(rootfs: Path, folder: PurePosixPath, where: str) -> None:
    with _parent(rootfs, folder, where) as fd:
        for entry in os.listdir(fd) if fd is not None else ():
            _remove_at(fd, entry)


def _remove_unless_folder(rootfs: Path, name: PurePosixPath, member, where: str) -> None:
    """A file replacing a file (or a link, or a folder by a non-folder) of a lower layer: the
    lower one goes first, as overlay filesystems show it. A folder over a folder merges."""
    if name == PurePosixPath("."):
        return
    with _parent(rootfs, name.parent, where) as fd, contextlib.suppress(FileNotFoundError):
        if fd is not None:
            info = os.stat(name.name, dir_fd=fd, follow_symlinks=False)
            if not (member.isdir() and stat.S_ISDIR(info.st_mode)):
                _remove_at(fd, name.name)


def unpack(rootfs: Path, layers: list[tuple[Path, str]], where: str) -> None:
    """Apply layers (blob path, digest), lowest first, into an empty rootfs folder."""
    rootfs.mkdir(parents=True, exist_ok=True)
    for blob, digest in layers:
        apply_layer(rootfs, blob, digest, where)
