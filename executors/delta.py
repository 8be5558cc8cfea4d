"""Upgrades and re-syncs send only what changed: a manifest of the rootfs, and a delta tar.

Every rootfs sealer installs carries MANIFEST: each file's and link's path with the sha256 of
its content (a link: its target) and its mode. A host that holds an older rootfs of the
cluster is sent a tar of the files whose entry differs, a list of those that are gone, and a
sha256 check list; it links its current rootfs aside, applies the delta there, checks every
changed file's digest, and only then swaps the folders. Templates (`*.tmpl`, rendered and
removed on the host) always travel, since the host no longer holds them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shlex
import tarfile
import threading
from pathlib import Path

from cluster.errors import SealerError
from cluster.image import sealer_home

MANIFEST = ".sealer-manifest.json"
REMOVED = ".sealer-removed"
CHECKS = ".sealer-check"
_lock = threading.Lock()


def manifest(rootfs: str, digest: str, skip: frozenset[str]) -> dict[str, str]:
    """path -> "sha256:mode" (or "link:target"), cached by the image digest. skip: top-level
    entries that do not travel in the rootfs tar (registry/)."""
    cached = sealer_home() / "cache" / "rootfs" / f"{digest.split(':')[-1]}.manifest.json"
    with _lock:
        if cached.exists():
            return json.loads(cached.read_text())
        entries = {}
        for folder, dirs, files in os.walk(rootfs):
            relative = os.path.relpath(folder, rootfs)
            if relative == ".":
                dirs[:] = sorted(d for d in dirs if d not in skip)
                files = [f for f in files if f not in skip]
            for name in sorted(
                files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            ):
                path = os.path.join(folder, name)
                key = posixpath.normpath(posixpath.join(relative.replace(os.sep, "/"), name))
                if os.path.islink(path):
                    entries[key] = f"link:{os.readlink(path)}"
                elif os.path.isfile(path):
                    entries[key] = f"{_sha256(path)}:{os.stat(path).st_mode & 0o7777:o}"
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(entries, sort_keys=True))
        return entries


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_host_manifest(text: str) -> dict[str, str] | None:
    """What the host's MANIFEST says, or None when it has none we can trust the shape of."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return None
    return data


def delta_tar(
    rootfs: str,
    new: dict[str, str],
    old: dict[str, str],
    extra: dict[str, bytes],
    owned,
) -> tuple[bytes, int]:
    """(the delta as a tar, how many files it carries). extra: files written as given (the
    rendered Configs and the new MANIFEST); owned: the tar filter making entries root's."""
    changed = [p for p, value in new.items() if old.get(p) != value or p.endswith(".tmpl")]
    removed = [p for p in old if p not in new and _safe(p)]
    checks = "".join(
        f"{new[p].split(':')[0]}  ./{p}\n" for p in changed if not new[p].startswith("link:")
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in changed:
            if not _safe(path):
                raise SealerError(f"image file {path!r}: not a plain relative path; refused")
            tar.add(os.path.join(rootfs, path), arcname=path, recursive=False, filter=owned)
        for name, content in sorted(
            {**extra, REMOVED: "\0".join(removed).encode(), CHECKS: checks.encode()}.items()
        ):
            info = owned(tarfile.TarInfo(name))
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue(), len(changed)


def _safe(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in Path(path).parts


def apply_command(target: str, marker_line: str, marker_file: str) -> str:
    """The host's side: a copy of hard links (tar and rm replace links, never write through
    them, so the live rootfs is untouched until the swap), apply, check, swap."""
    t, staging = shlex.quote(target), shlex.quote(f"{target}.new")
    return (
        f"rm -rf {staging} && cp -al {t} {staging} && tar xf - -C {staging} && cd {staging} && "
        f"xargs -0 -r rm -f -- < {REMOVED} && sha256sum --quiet --strict -c {CHECKS} && "
        f"rm -f {REMOVED} {CHECKS} {marker_file} && "
        f"echo {shlex.quote(marker_line)} > {marker_file} && "
        f"cd / && rm -rf {t} && mv {staging} {t}"
    )
