"""Images in an OCI layout: an index of platforms or one manifest, its config, its layers, and
the rootfs unpacked from them (cached by manifest digest, so apply and build unpack once)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import SealerError
from cluster.home import sealer_home
from cluster.oci import layout as oci
from cluster.oci import unpack

MAX_LAYERS = 256  # Docker's own limit is 127 on overlayfs
# uname -m -> the OCI platform's architecture (GOARCH names)
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
          "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
          "riscv64": "riscv64", "i686": "386", "i386": "386", "loongarch64": "loong64"}  # fmt: skip


def arch_of(machine: str) -> str:
    """A host's `uname -m` as an image platform names it (x86_64 -> amd64)."""
    return ARCHES.get(machine.strip().lower(), machine.strip().lower())


@dataclass(frozen=True)
class Instance:
    """One platform's manifest of an image."""

    digest: str  # the manifest's
    os: str
    arch: str
    variant: str
    manifest: dict
    config: dict

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.arch}" + (f"/{self.variant}" if self.variant else "")

    @property
    def annotations(self) -> dict:
        return dict(self.manifest.get("annotations") or {})

    @property
    def labels(self) -> dict:
        labels = (self.config.get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @property
    def layers(self) -> list[dict]:
        return list(self.manifest.get("layers") or [])


def instances(store: oci.Layout, descriptor: dict, where: str) -> list[Instance]:
    """The platform manifests an entry holds (one, or those of its index present locally)."""
    digest = descriptor.get("digest", "")
    document = store.read_json(digest, where)
    media = document.get("mediaType") or descriptor.get("mediaType", "")
    if media in oci.INDEXES or "manifests" in document:
        found = []
        for child in document.get("manifests") or []:
            if not isinstance(child, dict) or not store.has_blob(child.get("digest", "x" * 71)):
                continue  # an index pulled for one platform holds only that one
            platform = child.get("platform") or {}
            if platform.get("architecture") == "unknown":  # attestations, not an image
                continue
            found.append(_instance(store, child["digest"], where, platform))
        if not found:
            raise SealerError(f"{where}: the index {digest[:19]} holds no platform's manifest")
        return found
    return [_instance(store, digest, where, None)]


def _instance(store: oci.Layout, digest: str, where: str, platform: dict | None) -> Instance:
    manifest = store.read_json(digest, where)
    media = manifest.get("mediaType", oci.OCI_MANIFEST)
    if media not in oci.MANIFESTS or not isinstance(manifest.get("config"), dict):
        raise SealerError(f"{where}: {digest[:19]} is not an image manifest ({media or '?'})")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise SealerError(f"{where}: {digest[:19]} must list at most {MAX_LAYERS} layers")
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") not in oci.LAYERS:
            raise SealerError(
                f"{where}: {digest[:19]}: layer type {layer.get('mediaType') if isinstance(layer, dict) else layer!r} "
                "is not a tar layer sealer can unpack"
            )
        oci.check_digest(layer.get("digest", ""), where)
    config = store.read_json(manifest["config"].get("digest", ""), where)
    platform = platform or {}
    return Instance(
        digest=digest,
        os=str(platform.get("os") or config.get("os") or "linux"),
        arch=str(platform.get("architecture") or config.get("architecture") or ""),
        variant=str(platform.get("variant") or config.get("variant") or ""),
        manifest=manifest,
        config=config,
    )


def choose(found: list[Instance], arch: str, variant: str = "", where: str = "") -> Instance:
    """The instance for a platform; an error naming the platforms the image has."""
    for instance in found:
        if instance.arch == arch and (not variant or instance.variant in ("", variant)):
            return instance
    have = ", ".join(i.platform for i in found)
    raise SealerError(f"{where}: the image has no linux/{arch} instance (it has {have})")


def rootfs_cache() -> Path:
    return sealer_home() / "cache" / "unpacked"  # (cache/rootfs holds the tarballs sent to hosts)


def rootfs(store: oci.Layout, instance: Instance, where: str) -> Path:
    """The instance's layers unpacked, once: cached by its manifest digest, renamed into place
    whole so a killed unpack is never found."""
    hexa = oci.check_digest(instance.digest, where)
    target = rootfs_cache() / hexa
    if (target / "rootfs").is_dir():
        return target / "rootfs"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        layers = [
            (store.blob_path(layer["digest"], where), layer["digest"]) for layer in instance.layers
        ]
        for path, digest in layers:
            if not path.is_file():
                raise SealerError(f"{where}: layer {digest} is missing from the store")
        unpack.unpack(staging / "rootfs", layers, f"{where}@{instance.digest[:19]}")
        try:
            os.rename(staging, target)
        except OSError:  # another sealer unpacked it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / "rootfs"


def adopt_rootfs(digest: str, folder: Path) -> bool:
    """A rootfs just built (what unpacking the manifest `digest` would give) moved into the
    cache, so the first apply does not unpack it again; False when the cache had it (folder is
    left to the caller). Files get what unpacking gives them: root's, no setuid bit, nothing
    writable by others, no FIFO or socket."""
    target = rootfs_cache() / oci.check_digest(digest, str(folder))
    if (target / "rootfs").is_dir():
        return False
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                os.unlink(path)
                continue
            if info.st_mode & 0o7022:
                os.chmod(path, info.st_mode & 0o755)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".adopt-"))
    os.rename(folder, staging / "rootfs")
    try:
        os.rename(staging, target)
    except OSError:  # another sealer put it there meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return True
