"""ClusterImages: a rootfs folder with a Metadata file, found by path or in the local store."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from cluster import apps, beneath
from cluster.digests import rootfs_digest
from cluster.errors import SealerError
from cluster.home import sealer_home
from cluster.model import RUNTIMES, Image
from cluster.names import VERSION, version_problem
from cluster.oci import archives, refs, sealer_format, transfer
from cluster.oci import store as oci_store
from cluster.oci import write as oci_write
from cluster.oci.images import arch_of
from cluster.oci.unpack import MAX_PATH_DEPTH

RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type"
RUNTIME_ALIASES = {"k8s": "kubernetes", "": "kubernetes"}
REF_PATTERN = re.compile(
    r"^[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z"
)
DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[a-f0-9]{64}\Z")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".tar.xz", ".txz", ".tar.bz2", ".tbz2")  # what ADD unpacks
MAX_UNPACKED_BYTES = 64 * 2**30  # an archive's content; real ClusterImages are a few GiB
MAX_UNPACK_RATIO = 100  # binaries and images compress 2-5x; a bomb, thousands of times


class ImageError(SealerError):
    pass


def choose_runtime(metadata: dict, where: str = "Metadata") -> str:
    """The distribution a ClusterImage runs: ClusterRuntime (or the runtime label), kubernetes if unset."""
    value = metadata.get("ClusterRuntime")
    if value is None:
        value = (metadata.get("labels") or {}).get(RUNTIME_LABEL, "")
    if not isinstance(value, str):
        raise ImageError(f"{where}: ClusterRuntime must be a string, got {value!r}")
    runtime = RUNTIME_ALIASES.get(value.strip().lower(), value.strip().lower())
    if runtime not in RUNTIMES:
        raise ImageError(
            f"{where}: unknown ClusterRuntime {value!r}; supported: kubernetes (alias k8s), k3s, k0s"
        )
    return runtime


def parse_version(version: str) -> tuple[int, int, int]:
    m = VERSION.match(version or "")
    if not m:  # the version reaches kubeadm, k3s and k0s command lines
        raise ImageError(f"version {version!r} {version_problem(version or '')}")
    return int(m[1]), int(m[2]), int(m[3])


def read_metadata(rootfs: Path, name: str) -> dict:
    where = f"{name}: Metadata"
    path = rootfs / "Metadata"
    try:
        # a link to elsewhere is refused, and so is a Metadata too large to be one
        raw = beneath.read_file(rootfs, "Metadata", limit=oci_store.MAX_METADATA_BYTES)
    except (beneath.LinkRefused, beneath.TooLarge, OSError) as e:
        raise ImageError(f"{name}: {e}") from None
    if raw is None:
        raise ImageError(f"{name}: not a ClusterImage: no Metadata file at {path}")
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{path}: Metadata is not valid JSON: {e}") from None
    except RecursionError:
        raise ImageError(f"{path}: Metadata is nested too deep to read; refused") from None
    if not isinstance(metadata, dict):
        raise ImageError(f"{path}: Metadata must be a JSON object")
    check_metadata(metadata, where)
    return metadata


def check_metadata(metadata: dict, where: str) -> None:
    """What an image says about itself is well formed: a version for a cluster image, a known
    runtime, launch commands and apps of the right shapes."""
    if metadata.get("type") == apps.APP_IMAGE:  # apps only: no Kubernetes, no version
        if metadata.get("version"):
            raise ImageError(f"{where}: an application image has no 'version'")
    else:
        version = metadata.get("version")
        if not isinstance(version, str):
            raise ImageError(f"{where}: 'version' is missing or not a string")
        try:
            parse_version(version)
        except ImageError as e:
            raise ImageError(f"{where}: {e}") from None
        choose_runtime(metadata, where)
    cmds = metadata.get("cmd", [])
    if not isinstance(cmds, list) or not all(isinstance(c, str) for c in cmds):
        raise ImageError(f"{where}: 'cmd' must be a list of strings")
    _check_apps(metadata, where)
    _check_container_images(metadata, where)


CONTAINER_IMAGE_NAME = re.compile(
    r"^[a-z0-9][a-z0-9._/-]{0,254}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z"
)
SOURCE_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}\Z")


def _check_container_images(metadata: dict, where: str) -> None:
    """containerImages (what sealer build copied into registry/): names and digests that can
    reach a host's runtime configuration, so checked like any other name."""
    listed = metadata.get("containerImages") or []
    if not isinstance(listed, list):
        raise ImageError(f"{where}: 'containerImages' must be a list")
    for n, entry in enumerate(listed):
        ok = (
            isinstance(entry, dict)
            and CONTAINER_IMAGE_NAME.match(str(entry.get("name", "")))
            and DIGEST.match(str(entry.get("digest", "")))
            and SOURCE_REGISTRY.match(str(entry.get("source", "")).split("/", 1)[0])
        )
        if not ok:
            raise ImageError(
                f"{where}: containerImages[{n}] must have a name (PATH:TAG), a source "
                f"(REGISTRY/PATH...) and a sha256 digest"
            )


def _check_apps(metadata: dict, where: str) -> None:
    """The apps and launch of Metadata are well formed and name apps the image has."""
    listed = metadata.get("applications") or []
    if not isinstance(listed, list) or not all(
        isinstance(a, dict) and isinstance(a.get("name"), str) for a in listed
    ):
        raise ImageError(f"{where}: 'applications' must be a list of objects with a name")
    names = set()
    for app in listed:
        if apps.name_problem(app["name"]):
            raise ImageError(f"{where}: app {app['name']!r} {apps.name_problem(app['name'])}")
        names.add(app["name"])
    launch = metadata.get("launch") or {}
    if not isinstance(launch, dict):
        raise ImageError(f"{where}: 'launch' must be an object")
    for key in ("app_names", "cmds"):
        values = launch.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ImageError(f"{where}: launch.{key} must be a list of strings")
    unknown = [n for n in launch.get("app_names") or [] if n not in names]
    if unknown:
        raise ImageError(f"{where}: launch names apps the image does not have: {unknown}")


def _launch(metadata: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(commands, app names) the image launches; `cmd` is what images built before LAUNCH had."""
    launch = metadata.get("launch") or {}
    cmds = tuple(launch.get("cmds") or ()) or tuple(metadata.get("cmd") or ())
    return cmds, tuple(launch.get("app_names") or ())


def build_image(
    name: str,
    rootfs: Path,
    digest: str | None = None,
    metadata: dict | None = None,
    platforms: tuple[str, ...] = (),
) -> Image:
    """An Image from a rootfs; metadata, when given, is what the image says (an OCI image's
    Metadata file merged with its annotations and labels), checked as a Metadata file is."""
    if metadata is None:
        metadata = read_metadata(rootfs, name)
    else:
        check_metadata(metadata, f"{name}: Metadata")
    application = metadata.get("type") == apps.APP_IMAGE
    cmds, app_names = _launch(metadata)
    return Image(
        name=name,
        rootfs=str(rootfs),
        digest=digest or rootfs_digest(rootfs),
        version="" if application else metadata["version"],
        runtime="" if application else choose_runtime(metadata),
        kube_version=str(metadata.get("kubeVersion", "")),
        arch=str(metadata.get("arch", "")),
        variant=str(metadata.get("variant", "")),
        launch_cmds=cmds,
        launch_apps=app_names,
        apps=tuple(apps.App.from_json(a) for a in metadata.get("applications") or ()),
        kind="application" if application else "cluster",
        labels=dict(metadata.get("labels") or {}),
        env={str(k): str(v) for k, v in (metadata.get("env") or {}).items()},
        container_images=tuple(metadata.get("containerImages") or ()),
        platforms=platforms,
    )


# ---- the store: an OCI layout ($SEALER_HOME/oci, cluster/oci/), and the folders of images
# stored before it ($SEALER_HOME/images/<ref>/{rootfs/, image.json}), still read ----


def _store_dir(ref: str) -> Path:
    return sealer_home() / "images" / ref.replace("/", "%2F")


def is_image_ref(value: str) -> bool:
    """NAME:TAG or NAME@sha256:...: a name that may be pulled (an explicit tag keeps a mistyped
    folder from being taken for docker.io/<folder>:latest)."""
    return bool(REF_PATTERN.match(value) or DIGEST_REF.match(value)) and refs.is_reference(value)


def resolve(spec_image: str, base_dir: Path, policy: str = "missing") -> Image:
    """Find the image spec.image names: a path (relative to base_dir), or a reference in the
    store, pulled from its registry when missing (policy: sealer pull's)."""
    path = Path(spec_image)
    if not path.is_absolute():
        path = base_dir / path
    if path.exists():
        return _from_path(spec_image, path)
    if is_image_ref(spec_image):
        if policy != "missing" or not _in_store(spec_image):
            try:
                transfer.pull(spec_image, policy)
            except SealerError as e:
                reason = str(e).removeprefix(f"pull {spec_image}: ")
                raise ImageError(
                    f"image {spec_image!r} is not in the local store, and pulling it failed: "
                    f"{reason}; {_how_to_get(spec_image)}"
                ) from None
        return from_store(spec_image)
    raise ImageError(f"image {spec_image!r}: no such folder or archive at {path}")


def _in_store(ref: str) -> bool:
    return oci_store.find(ref) is not None or (_store_dir(ref) / "image.json").is_file()


def from_store(ref: str, arch: str = "") -> Image:
    """A stored image (for arch's instance when it has several platforms)."""
    if oci_store.find(ref):
        opened = oci_store.open_image(ref, arch)
        return build_image(
            opened.name, opened.rootfs, opened.digest, opened.metadata, opened.platforms
        )
    folder = _store_dir(ref)
    info_path = folder / "image.json"
    if not info_path.is_file():
        raise ImageError(
            f"image {ref!r} is not in the local store ({sealer_home() / 'oci'}); pull it with: "
            f"sealer pull {ref}; {_how_to_get(ref)}"
        )
    info = json.loads(info_path.read_text())
    return build_image(ref, folder / "rootfs", digest=info["digest"])


def _how_to_get(ref: str) -> str:
    return (
        f"load it with: sealer load -i FILE (an archive of `sealer save`; a rootfs folder: "
        f"sealer image load PATH --name {ref}), or build it with: sealer build -t {ref} "
        "CONTEXT; `sealer images` lists the store"
    )


def instance_for(image: Image, machine: str) -> Image:
    """The image a host of this machine (uname -m) installs: its own platform's instance of a
    multi-arch image (its rootfs, and its manifest's digest as what the host holds)."""
    problem = platform_problem(image, machine)
    if problem:
        raise ImageError(problem)
    arch = arch_of(machine)
    if len(image.platforms) <= 1 or image.arch == arch:
        return image
    opened = oci_store.open_image(image.name, arch)
    return replace(
        image, rootfs=str(opened.rootfs), digest=opened.instance.digest, arch=arch,
        variant=opened.instance.variant,
    )  # fmt: skip


def platform_problem(image: Image, machine: str) -> str:
    """Why a host of this machine (uname -m) cannot run image ("" when it can). Images of the
    older folder store say no platform: they are not checked."""
    if not machine or not image.platforms:
        return ""
    arch = arch_of(machine)
    if any(p.split("/")[1] == arch for p in image.platforms):
        return ""
    return f"the image has no linux/{arch} instance (it has {', '.join(image.platforms)})"


def _from_path(name: str, path: Path) -> Image:
    if path.is_dir() and archives.is_oci_archive(path):
        raise ImageError(
            f"image {name!r}: {path} is an OCI layout; load it first: sealer load -i {path}"
        )
    if path.is_dir():
        return build_image(name, path)
    if path.name.endswith(TAR_SUFFIXES):
        if archives.is_oci_archive(path) or archives.is_docker_archive(path):
            raise ImageError(
                f"image {name!r}: {path} is an image archive; load it first: sealer load -i {path}"
            )
        return build_image(name, _unpacked(path))
    raise ImageError(f"image {name!r}: {path} is neither a folder nor a .tar/.tar.gz archive")


def _unpacked(archive: Path) -> Path:
    return _rootfs_in(_unpacked_folder(archive))


def _unpacked_folder(archive: Path) -> Path:
    """Unpack an archive once into the cache, keyed by the archive's own sha256."""
    file_hash = hashlib.sha256()
    with open(archive, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            file_hash.update(chunk)
    target = sealer_home() / "cache" / "archives" / file_hash.hexdigest()
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        try:
            _extract(archive, staging)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def unpacked_archive(archive: Path) -> Path:
    """A tar archive's content, unpacked once into the cache (safely, as images are)."""
    return _unpacked_folder(archive)


def _extract(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            unpacked = 0
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts:
                    raise ImageError(f"{archive}: unsafe path in archive: {member.name!r}")
                if len(parts) > MAX_PATH_DEPTH:  # os.makedirs recurses once per level
                    raise ImageError(
                        f"{archive}: a path in the archive is {len(parts)} levels deep; refused"
                    )
                if member.isdev():  # FIFOs included
                    raise ImageError(f"{archive}: device file in archive: {member.name!r}")
                unpacked += member.size
            _check_unpacked_size(archive, unpacked)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                tar.extractall(into)
    except (tarfile.TarError, EOFError, OSError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0].rstrip(":")
        raise ImageError(f"{archive}: not a readable tar archive ({reason})") from None


def _check_unpacked_size(archive: Path, unpacked: int) -> None:
    """Refuse an archive bomb before writing a byte of it."""
    packed = max(archive.stat().st_size, 1)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ImageError(
            f"{archive}: unpacks to {unpacked / 2**30:.1f} GiB, more than the limit of "
            f"{MAX_UNPACKED_BYTES // 2**30} GiB; refused"
        )
    if unpacked > 64 * 2**20 and unpacked / packed > MAX_UNPACK_RATIO:
        raise ImageError(
            f"{archive}: unpacks to {unpacked / packed:.0f} times its size (limit "
            f"{MAX_UNPACK_RATIO}x), which no ClusterImage does; refused"
        )


def _rootfs_in(folder: Path) -> Path:
    """An archive holds the rootfs at its top, or inside one folder."""
    if (folder / "Metadata").exists():
        return folder
    entries = [p for p in folder.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def load_into_store(source: Path, name: str | None, force: bool = False) -> list[str]:
    """`sealer load -i FILE` / `sealer image load PATH`: an image archive (oci-archive,
    oci-dir, docker-archive) or a rootfs (folder or tar) into the store. A rootfs becomes a
    one-layer OCI image named NAME:TAG (default <runtime>:<version>); another image already
    stored under that name is replaced only with force."""
    if not source.exists():
        raise ImageError(f"{source}: no such folder or archive")
    if archives.is_oci_archive(source) or archives.is_docker_archive(source):
        return archives.load(source, name)
    rootfs = _unpacked(source) if source.is_file() else source
    image = build_image(str(source), rootfs)
    ref = name or (_saved_name(source) if source.is_file() else None)
    ref = ref or f"{image.runtime}:{image.version}"
    if not is_image_ref(ref):
        raise ImageError(f"image name {ref!r} is not of the form NAME:TAG")
    held = oci_store.find(ref)
    if held and not force:
        opened = oci_store.open_image(ref)
        if rootfs_digest(opened.rootfs) != image.digest:
            raise ImageError(
                f"{ref} is already in the store with another content ({held[1]['digest'][:19]});"
                f" pass --force to replace it"
            )
    store(ref, rootfs)
    return [ref]


def store_rootfs(ref: str, rootfs: Path, base: Image | None, metadata: dict) -> dict:
    """Write rootfs into the store as an OCI image in sealer's format, named ref: one layer
    of what changed against base's rootfs (base's layers below it), or of the whole rootfs."""
    layout = oci_store.store().create()
    layers, base_rootfs = _base_layers(base, str(metadata.get("arch") or ""))
    made = oci_write.write_layer(layout, rootfs, base_rootfs)
    if made:
        layers.append(made)
    image = build_image(ref, rootfs, metadata=metadata)
    version = _sealer_version()
    variant = image.variant if re.fullmatch(r"v[0-9]+", image.variant) else ""  # arm's v7, v8
    annotations = {
        sealer_format.EXTENSION: json.dumps(sealer_format.build_extension(metadata, version)),
    }
    listed = sealer_format.build_container_images(
        list(metadata.get("containerImages") or ()), image.arch or oci_store.local_arch(), variant
    )
    if listed:
        annotations[sealer_format.CONTAINER_IMAGES] = json.dumps(listed)
    descriptor = oci_write.write_image(
        layout,
        layers,
        arch=image.arch or oci_store.local_arch(),
        variant=variant,
        labels=sealer_format.build_labels(metadata, image.runtime, version),
        annotations=annotations,
    )
    return descriptor


def _base_layers(base: Image | None, arch: str) -> tuple[list, Path | None]:
    """(layers with their diff ids, rootfs) of the base an image is built on, when the base
    is in the OCI store as the build saw it; else nothing: the new layer holds everything."""
    found = oci_store.find(base.name) if base is not None else None
    if not found or found[1]["digest"] != base.digest:
        return [], None
    opened = oci_store.open_image(base.name, arch or base.arch)
    diff_ids = (opened.instance.config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(opened.instance.layers):
        return [], None
    return list(zip(opened.instance.layers, diff_ids, strict=True)), opened.rootfs


def store(ref: str, rootfs: Path) -> Image:
    """Put a rootfs into the store under ref (replacing what was there), atomically."""
    if not is_image_ref(ref):
        raise ImageError(f"image name {ref!r} is not of the form NAME:TAG")
    oci_store.write_built(ref, [store_rootfs(ref, rootfs, None, read_metadata(rootfs, ref))])
    return from_store(ref)


def _sealer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sealer-py {version('sealer')}"
    except PackageNotFoundError:
        return "sealer-py"


def _builds_file() -> Path:
    return sealer_home() / "cache" / "builds.json"


def save_build_record(ref: str, record: dict) -> None:
    """What built ref (base, Kubefile, build key): for `inspect` and unchanged rebuilds."""
    path = _builds_file()
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        records = {}
    records[ref] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".builds-{os.getpid()}.json")
    tmp.write_text(json.dumps(records, indent=1) + "\n")
    os.replace(tmp, path)


def store_record(ref: str) -> dict | None:
    """What the store knows of ref (its digest, and how it was built), or None when ref is not
    in the store."""
    found = oci_store.find(ref)
    if found:
        try:
            builds = json.loads(_builds_file().read_text())
        except (OSError, ValueError):
            builds = {}
        record = builds.get(found[0]) or {}
        if record.get("digest") != found[1]["digest"]:
            record = {}  # built once, since pulled or tagged over
        return {**record, "name": found[0], "digest": found[1]["digest"]}
    try:
        return json.loads((_store_dir(ref) / "image.json").read_text())
    except (OSError, ValueError):
        return None


def remove_from_store(ref: str) -> None:
    if oci_store.find(ref):
        oci_store.remove(ref)
        return
    folder = _store_dir(ref)
    if not (folder / "image.json").is_file():
        raise ImageError(
            f"image {ref!r} is not in the local store ({sealer_home() / 'oci'}); "
            "`sealer images` lists it"
        )
    shutil.rmtree(folder)


NAME_HEADER = "SEALER.image.name"  # a pax header of archives saved before the OCI store


def save(refs: list[str], out: Path, fmt: str = "oci-archive") -> list[str]:
    """`sealer save`: images to an oci-archive (default), an oci-dir or a docker-archive. An
    image of the older folder store is moved into the OCI store first."""
    for ref in refs:
        if not oci_store.find(ref) and (_store_dir(ref) / "image.json").is_file():
            store(ref, _store_dir(ref) / "rootfs")
    return archives.save(refs, out, fmt)


def _saved_name(archive: Path) -> str | None:
    try:
        with tarfile.open(archive) as t:
            name = t.pax_headers.get(NAME_HEADER)
    except (tarfile.TarError, OSError):
        return None
    return name if name and is_image_ref(name) else None


def list_store() -> list[dict]:
    """Every stored image: the OCI store's, then the older folders' not shadowed by them."""
    records = oci_store.listing()
    names = {r["name"] for r in records}
    root = sealer_home() / "images"
    for info in sorted(root.glob("*/image.json")) if root.is_dir() else ():
        try:
            record = json.loads(info.read_text())
        except ValueError:
            continue
        if record.get("name") not in names:
            records.append(
                {**record, "platforms": [f"linux/{record.get('arch') or '?'}"], "legacy": True}
            )
    return records
