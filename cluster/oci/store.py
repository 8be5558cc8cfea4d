"""The local image store and what moves images in and out of it: pull, push, tag, remove,
save and load. The store is one OCI layout ($SEALER_HOME/oci); names are full references."""

from __future__ import annotations

import contextlib
import json
import os
import platform as machine
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cluster import beneath
from cluster.errors import SealerError
from cluster.oci import images, sealer_format, skopeo
from cluster.oci import layout as oci
from cluster.oci.refs import Reference, parse, same

POLICIES = ("always", "missing", "ifnewer", "never")
SAVE_FORMATS = ("oci-archive", "oci-dir", "docker-archive")
MAX_ARCHIVE_JSON = oci.MAX_JSON_BYTES


def home() -> Path:
    return Path(os.environ.get("SEALER_HOME") or Path.home() / ".sealer")


def store() -> oci.Layout:
    return oci.Layout(home() / "oci")


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
        raw = beneath.read_file(rootfs, "Metadata")
    except (beneath.LinkRefused, OSError) as e:
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
    merged.setdefault("arch", instance.arch)
    if instance.variant:
        merged.setdefault("variant", instance.variant)
    return merged


# ---- registries ----


def pull(
    text: str, policy: str = "missing", platform: str = "", tls_verify: bool = True
) -> tuple[str, bool]:
    """Bring an image into the store; (its stored name, whether anything was fetched)."""
    ref = parse(text)
    chosen = parse_platform(platform) if platform else None
    found = find(text)
    if policy == "never":
        if not found:
            raise SealerError(
                f"pull {text}: not in the local store, and --policy never forbids pulling it"
            )
        return found[0], False
    if policy == "missing" and found:
        return found[0], False
    if policy == "ifnewer" and found:
        remote = "sha256:" + _sha256(skopeo.remote_manifest(ref, tls_verify))
        if remote == found[1]["digest"]:
            return found[0], False
    name = found[0] if found else text
    layout = store()
    with layout.in_use():  # no garbage collection removes the blobs before they are named
        staging = layout.staging()
        try:
            skopeo.copy(
                skopeo.docker(ref),
                f"oci:{staging}:{name}",
                f"pull {text}",
                src_registry=ref.registry,
                tls_verify=tls_verify,
                platform=chosen,
                dest_shared_blobs=layout.blobs,
            )
            descriptor = oci.Layout(staging).find(name)
            if not descriptor:
                raise SealerError(f"pull {text}: skopeo wrote no image")
            check_readable(layout, descriptor, f"pull {text}")  # or refused, never named
            with layout.locked():
                layout.set_name(name, descriptor)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return name, True


def check_readable(layout: oci.Layout, descriptor: dict, where: str) -> None:
    """Every instance's manifest, config and sealer annotations read (not its layers: they
    are checked as they are unpacked, at first use)."""
    for instance in images.instances(layout, descriptor, where):
        at = f"{where}: {instance.digest[:19]}"
        sealer_format.extension(instance.annotations, at)
        sealer_format.container_images(instance.annotations, at)


def parse_platform(value: str) -> tuple[str, str, str]:
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(p and p.replace("_", "").isalnum() for p in parts):
        raise SealerError(f"--platform {value!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def push(name: str, destination: str = "", tls_verify: bool = True) -> str:
    """Send a stored image (every platform of it) to its registry, or to destination."""
    found = find(name)
    if not found:
        raise SealerError(f"push {name}: not in the local store (`sealer images` lists it)")
    stored = found[0]
    ref = parse(destination or stored)
    images.instances(store(), found[1], stored)  # whole and readable before anything is sent
    skopeo.copy(
        f"oci:{store().root}:{stored}",
        skopeo.docker(ref),
        f"push {ref}",
        dest_registry=ref.registry,
        tls_verify=tls_verify,
    )
    return str(ref)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


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


# ---- save and load ----


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
    staging = Path(
        tempfile.mkdtemp(dir=output.parent if fmt == "oci-dir" else None, prefix=".sealer-save-")
    )
    try:
        target = oci.Layout(staging / "layout").create()
        for stored, descriptor in picked:
            for digest in layout.reachable(descriptor, stored):
                oci.adopt_blob(target, layout.blob_path(digest), digest, stored)
            target.set_name(stored, descriptor)
        if fmt == "oci-dir":
            if output.exists():
                raise SealerError(f"{output}: already exists; save an oci-dir to a new folder")
            os.rename(target.root, output)
        else:
            tmp = output.with_name(f".{output.name}.tmp")
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for entry in ("oci-layout", "index.json", "blobs"):
                    tar.add(target.root / entry, arcname=entry)
            os.replace(tmp, output)
    except OSError as e:
        raise SealerError(f"{output}: cannot write it: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [stored for stored, _ in picked]


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
                    oci.adopt_blob(layout, source.blob_path(digest), digest, f"load {path}")
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
                tar.extract(member, into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SealerError(f"load {archive}: not a readable archive ({e})") from None
    return into


def reference(name: str) -> Reference:
    return parse(name)
