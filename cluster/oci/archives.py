"""Images to and from files: `sealer save` (an oci-archive, an oci-dir, a docker-archive) and
`sealer load` (any of them)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from cluster.errors import SealerError
from cluster.oci import layout as oci
from cluster.oci import skopeo
from cluster.oci.refs import parse
from cluster.oci.store import find, local_arch, store
from cluster.oci.transfer import check_readable
from cluster.oci.unpack import EXTRACT_OPTIONS

SAVE_FORMATS = ("oci-archive", "oci-dir", "docker-archive")
MAX_ARCHIVE_JSON = oci.MAX_JSON_BYTES


def save(names: list[str], output: Path, fmt: str = "oci-archive") -> list[str]:
    """Write images to an oci-archive (a tar of an OCI layout), an oci-dir or a docker-archive."""
    with store().in_use():  # no rmi removes the blobs while they are read
        return _save(names, output, fmt)


def _save(names: list[str], output: Path, fmt: str) -> list[str]:
    if fmt not in SAVE_FORMATS:
        raise SealerError(f"--format {fmt!r}: one of {', '.join(SAVE_FORMATS)}")
    layout = store()
    picked = []
    for name in names:
        found = find(name)
        if not found:
            raise SealerError(f"save {name}: not in the local store (`sealer images` lists it)")
        picked.append(found)
    if fmt == "docker-archive":
        if len(picked) != 1:
            raise SealerError("save --format docker-archive takes one image")
        tmp = output.with_name(f".{output.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        skopeo.copy(f"oci:{layout.root}:{picked[0][0]}", f"docker-archive:{tmp}:{picked[0][0]}",
                    f"save {picked[0][0]}", platform=("linux", local_arch(), ""))  # fmt: skip
        os.replace(tmp, output)
        return [picked[0][0]]
    blobs = sorted({d for stored, entry in picked for d in layout.reachable(entry, stored)})
    index = oci.index_bytes([oci.named(stored, entry) for stored, entry in picked])
    try:
        if fmt == "oci-dir":
            _write_dir(layout, blobs, index, output)
        else:
            _write_archive(layout, blobs, index, output)
    except OSError as e:
        raise SealerError(f"{output}: cannot write it: {e.strerror or e}") from None
    return [stored for stored, _ in picked]


def _write_archive(layout: oci.Layout, blobs: list[str], index: bytes, output: Path) -> None:
    """A tar of an OCI layout, written from the store's blobs, renamed into place whole."""
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", oci.LAYOUT_BYTES)
            _add_bytes(tar, "index.json", index)
            for digest in blobs:
                tar.add(layout.blob_path(digest), arcname=f"blobs/sha256/{digest[7:]}")
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_dir(layout: oci.Layout, blobs: list[str], index: bytes, output: Path) -> None:
    """An OCI layout folder: copies of the blobs (never links: the store's files stay its own)."""
    if output.exists():
        raise SealerError(f"{output}: already exists; save an oci-dir to a new folder")
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}-"))
    try:
        (staging / "blobs" / "sha256").mkdir(parents=True)
        for digest in blobs:
            shutil.copyfile(layout.blob_path(digest), staging / "blobs" / "sha256" / digest[7:])
        (staging / "oci-layout").write_bytes(oci.LAYOUT_BYTES)
        (staging / "index.json").write_bytes(index)
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def is_oci_archive(path: Path) -> bool:
    """An OCI layout folder, or a tar holding one (index.json and oci-layout at its top)."""
    if path.is_dir():
        return (path / "index.json").is_file() and (path / "oci-layout").is_file()
    try:
        with tarfile.open(path) as tar:
            names = set()
            for member in tar:
                names.add(member.name.lstrip("./"))
                if {"index.json", "oci-layout"} <= names:
                    return True
                if len(names) > 4 and not any(n.startswith("blobs") for n in names):
                    return False
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def is_docker_archive(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.name.lstrip("./") == "manifest.json":
                    return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def load(path: Path, name: str | None = None) -> list[str]:
    """An oci-archive, oci-dir or docker-archive into the store; the names it brought."""
    layout = store()
    with layout.in_use():
        return _load(layout, path, name)


def _load(layout: oci.Layout, path: Path, name: str | None) -> list[str]:
    staging = layout.staging()
    try:
        if is_docker_archive(path):
            target = name or "loaded:latest"
            parse(target, "load --name")
            skopeo.copy(f"docker-archive:{path}", f"oci:{staging}:{target}", f"load {path}",
                        dest_shared_blobs=layout.blobs, platform=("linux", local_arch(), ""))  # fmt: skip
            source = oci.Layout(staging)
            entries = [(target, source.find(target))]
        else:
            source = oci.Layout(path if path.is_dir() else _untar(path, staging / "layout"))
            entries = source.names()
            if name:
                if len(entries) != 1:
                    raise SealerError(f"load {path}: --name needs an archive of one image")
                entries = [(name, entries[0][1])]
            for stored, descriptor in entries:
                parse(stored, f"load {path}: image name")
                for digest in source.reachable(descriptor, f"load {path}: {stored}"):
                    oci.adopt_blob(layout, source.blob_path(digest), digest, f"load {path}",
                                   move=not path.is_dir())  # fmt: skip
        if not entries:
            raise SealerError(f"load {path}: the archive names no image")
        for stored, descriptor in entries:
            check_readable(layout, descriptor, f"load {path}: {stored}")
        with layout.locked():
            for stored, descriptor in entries:
                existing = find(stored)
                layout.set_name(existing[0] if existing else stored, descriptor)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [stored for stored, _ in entries]


def _untar(archive: Path, into: Path) -> Path:
    """An oci-archive's layout, unpacked safely (only plain files and folders)."""
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                clean = member.name.lstrip("./")
                if (
                    not (member.isfile() or member.isdir())
                    or ".." in Path(clean).parts
                    or member.name.startswith("/")
                ):
                    raise SealerError(f"load {archive}: unexpected entry {member.name!r}; refused")
                if (
                    member.isfile()
                    and clean in ("index.json", "oci-layout")
                    and member.size > MAX_ARCHIVE_JSON
                ):
                    raise SealerError(f"load {archive}: {clean} is too large; refused")
                tar.extract(member, into, **EXTRACT_OPTIONS)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SealerError(f"load {archive}: not a readable archive ({e})") from None
    return into
