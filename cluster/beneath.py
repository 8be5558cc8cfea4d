"""Files inside a folder that hostile content may have filled with symlinks (a rootfs, a context).

Every function here walks the path one component at a time from a folder descriptor, with
O_NOFOLLOW on each, so no symlink is ever followed: a link anywhere on the way is refused
(LinkRefused), never resolved. `..` is refused too. That is what keeps a `RUN ln -s /etc x`
or a planted `Metadata -> /root/.ssh/authorized_keys` from making sealer (which runs as root)
read or write outside the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from cluster.errors import SealerError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(SealerError):
    pass


class TooLarge(SealerError):
    pass


def _parts(relative: str | Path) -> list[str]:
    parts = [p for p in Path(relative).parts if p not in ("/", ".")]
    if ".." in parts:
        raise LinkRefused(f"{relative}: '..' leads out of the folder; refused")
    return parts


def _refused(root: Path, parts: list[str], upto: int) -> LinkRefused:
    where = "/".join(parts[: upto + 1])
    return LinkRefused(f"{where} goes through a symlink (or a non-folder) in {root}; refused")


@contextlib.contextmanager
def _folder(root: Path, parts: list[str], create: bool = False):
    """A descriptor of root/parts, each component opened without following links (root itself
    is the caller's choice, and may be reached through one)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=fd)
            try:
                next_fd = os.open(name, _DIR, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused(root, parts, i) from None
                raise
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def folder(root: Path, relative: str | Path, create: bool = False):
    """A context manager: the descriptor of the folder root/relative, reached (or made, with
    create) without following a link; LinkRefused for one on the way, FileNotFoundError when
    it is absent."""
    return _folder(root, _parts(relative), create)


def read_file(root: Path, relative: str | Path, limit: int | None = None) -> bytes | None:
    """The content of root/relative, None when there is no such file; a link is refused, and
    a file over limit bytes (when given) too, before it is read."""
    *folders, name = _parts(relative)
    try:
        with _folder(root, folders) as dir_fd:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO: no hang
            fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refused(root, [*folders, name], len(folders)) from None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LinkRefused(f"{relative}: not a regular file inside {root}; refused")
        if limit is not None and info.st_size > limit:
            raise TooLarge(f"{relative}: {info.st_size:,} bytes, more than {limit:,}; refused")
        return f.read() if limit is None else f.read(limit + 1)


def write_file(root: Path, relative: str | Path, data: bytes, mode: int = 0o644) -> None:
    """Make root/relative hold data (folders created as needed); whatever was at that name
    (a link included) is replaced, never written through."""
    *folders, name = _parts(relative)
    with _folder(root, folders, create=True) as dir_fd:
        _remove(dir_fd, name, relative)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the mode as given, whatever the umask
            f.write(data)


def _remove(dir_fd: int, name: str, relative) -> None:
    """Make room for a new file or link (a link is removed, not followed)."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):
        raise LinkRefused(f"{relative}: a folder is there; refused to replace it") from None


def is_folder(root: Path, relative: str | Path) -> bool:
    """Whether root/relative is a folder (a link to one is refused, not followed)."""
    try:
        with _folder(root, _parts(relative)):
            return True
    except (FileNotFoundError, LinkRefused):
        if os.path.islink(Path(root, relative)):
            raise
        return False


def make_folders(root: Path, relative: str | Path) -> None:
    """root/relative and its parents, refusing any symlink on the way."""
    with _folder(root, _parts(relative), create=True):
        pass


def copy_file(source: Path, root: Path, relative: str | Path) -> None:
    """Copy a regular file (its content and mode) to root/relative, as write_file does."""
    info = os.lstat(source)
    if not stat.S_ISREG(info.st_mode):
        raise LinkRefused(f"{source}: not a regular file; refused")
    with open(source, "rb", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW)) as f:
        write_file(root, relative, f.read(), stat.S_IMODE(info.st_mode))
    *folders, name = _parts(relative)
    with _folder(root, folders) as dir_fd:
        times = (info.st_atime_ns, info.st_mtime_ns)
        os.utime(name, ns=times, dir_fd=dir_fd, follow_symlinks=False)


def make_link(root: Path, relative: str | Path, target: str) -> None:
    """A symlink at root/relative to target, which must stay inside root: relative, and not
    climbing above root by its `..`s."""
    *folders, name = _parts(relative)
    if os.path.isabs(target):
        raise LinkRefused(f"{relative}: a symlink to the absolute path {target}; refused")
    parts = [p for p in Path(target).parts if p != "."]
    ups = next((i for i, p in enumerate(parts) if p != ".."), len(parts))
    # `..` only at the start, and no more of them than folders above the link: each link
    # then stays inside by itself, whatever links its target goes through.
    if ups > len(folders) or ".." in parts[ups:]:
        raise LinkRefused(f"{relative}: a symlink to {target} leads out of the folder; refused")
    with _folder(root, folders, create=True) as dir_fd:
        _remove(dir_fd, name, relative)
        os.symlink(target, name, dir_fd=dir_fd)
