"""Writing images into an OCI layout: layers from a rootfs (whole, or what changed against the
base's rootfs, with whiteouts for what went), the config, the manifest, an index of platforms.

Layers are reproducible: entries sorted, owners root, times kept from the files, gzip without a
timestamp. The same rootfs makes the same digest, so an unchanged rebuild is the same image.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from pathlib import Path

from cluster.oci import layout as oci
from cluster.oci.unpack import WHITEOUT

GZIP_LEVEL = 1  # zlib's fastest: sealer's layers are mostly already compressed binaries


class _HashingWriter:
    def __init__(self, f):
        self.f, self.hash, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or a.st_mode != b.st_mode:
        return False
    if stat.S_ISDIR(a.st_mode):
        return True
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _walk(root: Path) -> dict[str, os.stat_result]:
    """Every path under root (relative, POSIX), links not followed."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def changes(rootfs: Path, base: Path | None) -> tuple[list[str], list[str]]:
    """(paths to add, paths whited out) that turn base into rootfs."""
    now = _walk(rootfs)
    if base is None:
        return sorted(now), []
    before = _walk(base)
    added = []
    for path, info in now.items():
        old = before.get(path)
        if (
            old is None
            or not _same(info, old)
            or stat.S_ISLNK(info.st_mode)
            and os.readlink(rootfs / path) != os.readlink(base / path)
        ):
            added.append(path)
    gone = [p for p in before if p not in now]
    gone_set = set(gone)
    top_gone = [
        p for p in gone if os.path.dirname(p) not in gone_set
    ]  # a folder's whiteout covers it
    # a folder kept whose lower content was replaced by a non-folder needs nothing more
    return sorted(added), sorted(top_gone)


def write_layer(
    layout: oci.Layout, rootfs: Path, base: Path | None = None
) -> tuple[dict, str] | None:
    """A gzip'd tar layer of rootfs (or of its changes against base) into layout's blobs;
    (descriptor, diff_id), or None when nothing changed."""
    added, gone = changes(rootfs, base)
    if base is not None and not added and not gone:
        return None
    layout.create()
    fd, tmp = tempfile.mkstemp(dir=layout.blobs / "sha256", prefix=".layer-")
    try:
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashingWriter(raw)
            with gzip.GzipFile(
                fileobj=compressed, mode="wb", compresslevel=GZIP_LEVEL, mtime=0
            ) as gz:
                plain = _HashingWriter(gz)
                with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for path in gone:
                        info = tarfile.TarInfo(
                            os.path.join(os.path.dirname(path), WHITEOUT + os.path.basename(path))
                        )
                        tar.addfile(info)
                    for path in added:
                        _add(tar, rootfs, path)
        digest = "sha256:" + compressed.hash.hexdigest()
        target = layout.blob_path(digest)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    descriptor = {"mediaType": oci.OCI_LAYER_GZIP, "digest": digest, "size": compressed.size}
    return descriptor, "sha256:" + plain.hash.hexdigest()


def _add(tar: tarfile.TarFile, rootfs: Path, relative: str) -> None:
    info = tar.gettarinfo(str(rootfs / relative), arcname=relative)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isfile():
        with open(rootfs / relative, "rb") as f:
            tar.addfile(info, f)
    elif info.isdir() or info.issym() or info.islnk():
        tar.addfile(info)
    # sockets and FIFOs are not image content


def write_image(
    layout: oci.Layout,
    layers: list[tuple[dict, str]],
    *,
    arch: str,
    variant: str = "",
    labels: dict,
    annotations: dict,
    history: list[dict] | None = None,
) -> dict:
    """Config and manifest for these layers; the manifest's descriptor (with its platform)."""
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    config = {
        **platform,
        "config": {"Labels": labels} if labels else {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": history or [],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = layout.put_blob(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [descriptor for descriptor, _ in layers],
        "annotations": annotations,
    }
    data = json.dumps(manifest, sort_keys=True).encode()
    return {
        "mediaType": oci.OCI_MANIFEST,
        "digest": layout.put_blob(data),
        "size": len(data),
        "platform": platform,
    }


def write_index(layout: oci.Layout, manifests: list[dict]) -> dict:
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": manifests}
    data = json.dumps(index, sort_keys=True).encode()
    return {"mediaType": oci.OCI_INDEX, "digest": layout.put_blob(data), "size": len(data)}
