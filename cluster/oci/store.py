"""The local image store: one OCI layout ($SEALER_HOME/oci) whose names are image references;
finding, opening (for a platform), naming, listing and removing images. What moves images in
and out of it: transfer.py (registries) and archives.py (files)."""

from __future__ import annotations

import json
import platform as machine
import shutil
from dataclasses import dataclass
from pathlib import Path

from cluster import beneath
from cluster.errors import SealerError
from cluster.home import sealer_home
from cluster.oci import images, sealer_format
from cluster.oci import layout as oci
from cluster.oci.refs import parse, same

MAX_METADATA_BYTES = 1 << 20  # sealer's Metadata is a few hundred bytes; apps' lists stay small


def store() -> oci.Layout:
    return oci.Layout(sealer_home() / "oci")


def local_arch() -> str:
    return images.arch_of(machine.machine())


def find(name: str) -> tuple[str, dict] | None:
    """The stored name and descriptor of an image, by its name as written or in full."""
    layout = store()
    if not (layout.root / "index.json").exists():
        return None
    exact = layout.find(name)
    if exact:
        return name, exact
    for stored, entry in layout.names():
        if same(stored, name):
            return stored, entry
    return None


@dataclass(frozen=True)
class Opened:
    """A stored image, opened for one platform."""

    name: str
    digest: str  # the name's: an index's, or the single manifest's
    instance: images.Instance  # the platform chosen
    instances: tuple[images.Instance, ...]
    rootfs: Path
    metadata: dict  # Metadata file + extension + labels (sealer's precedence)

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(i.platform for i in self.instances)


def open_image(name: str, arch: str = "") -> Opened:
    found = find(name)
    if not found:
        raise SealerError(f"image {name!r} is not in the local store")
    stored, descriptor = found
    layout = store()
    listed = images.instances(layout, descriptor, stored)
    if arch:
        chosen = images.choose(listed, arch, where=stored)
    else:  # the operator's own platform when the image has it, else its first
        chosen = next((i for i in listed if i.arch == local_arch()), listed[0])
    rootfs = images.rootfs(layout, chosen, stored)
    return Opened(
        stored,
        descriptor["digest"],
        chosen,
        tuple(listed),
        rootfs,
        metadata_of(chosen, rootfs, stored),
    )


def metadata_of(instance: images.Instance, rootfs: Path, where: str) -> dict:
    try:
        raw = beneath.read_file(rootfs, "Metadata", limit=MAX_METADATA_BYTES)
    except (beneath.LinkRefused, beneath.TooLarge, OSError) as e:
        raise SealerError(f"{where}: {e}") from None
    metadata = {}
    if raw is not None:
        try:
            metadata = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise SealerError(f"{where}: its Metadata is not valid JSON: {e}") from None
        if not isinstance(metadata, dict):
            raise SealerError(f"{where}: its Metadata must be a JSON object")
    ext = sealer_format.extension(instance.annotations, where)
    if raw is None and ext is None:
        raise SealerError(
            f"{where}: not a ClusterImage: neither a Metadata file nor a "
            f"{sealer_format.EXTENSION} annotation"
        )
    merged = sealer_format.merged_metadata(metadata, ext, instance.labels)
    if instance.arch:  # the platform the manifest is for, over an older Metadata's word
        merged["arch"] = instance.arch
    if instance.variant:
        merged["variant"] = instance.variant
    return merged


def describe(name: str) -> tuple[str, tuple[str, ...]]:
    """(digest, platforms) of a stored image, without unpacking it."""
    found = find(name)
    if not found:
        raise SealerError(f"image {name!r} is not in the local store")
    listed = images.instances(store(), found[1], found[0])
    return found[1]["digest"], tuple(i.platform for i in listed)


# ---- names ----


def tag(source: str, targets: list[str]) -> list[str]:
    found = find(source)
    if not found:
        raise SealerError(f"tag {source}: not in the local store (`sealer images` lists it)")
    for target in targets:
        parse(target, "tag")
    layout = store()
    with layout.locked():
        for target in targets:
            existing = find(target)
            layout.set_name(existing[0] if existing else target, found[1])
    return targets


def remove(name: str) -> int:
    """Forget a name; blobs no other name reaches are deleted. The count of blobs removed."""
    found = find(name)
    if not found:
        raise SealerError(f"image {name!r} is not in the local store (`sealer images` lists it)")
    layout = store()
    with layout.locked():
        layout.remove_name(found[0])
        removed = layout.collect_garbage()
    cache = images.rootfs_cache()
    for unpacked in cache.iterdir() if cache.is_dir() else ():
        digest = f"sha256:{unpacked.name}"
        if oci.is_digest(digest) and not layout.has_blob(digest):
            shutil.rmtree(unpacked, ignore_errors=True)  # the rootfs of a manifest now gone
    return removed


def listing() -> list[dict]:
    """Each stored name: digest, platforms, size of its blobs."""
    layout = store()
    if not (layout.root / "index.json").exists():
        return []
    rows = []
    for name, entry in sorted(layout.names()):
        try:
            listed = images.instances(layout, entry, name)
            blobs = set(layout.reachable(entry, name))
            size = sum(layout.blob_path(d).stat().st_size for d in blobs if layout.has_blob(d))
            platforms = [i.platform for i in listed]
        except SealerError:
            platforms, size = ["(unreadable)"], 0
        rows.append({"name": name, "digest": entry["digest"], "platforms": platforms, "size": size})
    return rows


# ---- building ----


def write_built(
    name: str,
    instances_made: list[dict],
) -> dict:
    """Name the built manifest (or an index of them, one per platform) in the store."""
    layout = store()
    if len(instances_made) == 1:
        descriptor = {k: v for k, v in instances_made[0].items() if k != "platform"}
    else:
        from cluster.oci.write import write_index

        descriptor = write_index(layout, instances_made)
    with layout.locked():
        existing = find(name)
        layout.set_name(existing[0] if existing else name, descriptor)
    return descriptor
