"""ClusterImages: a rootfs folder with a Metadata file, found by path or in the local store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from cluster import apps, beneath
from cluster.digests import rootfs_digest
from cluster.errors import SealerError
from cluster.model import RUNTIMES, Image
from cluster.names import VERSION, version_problem

RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type"
RUNTIME_ALIASES = {"k8s": "kubernetes", "": "kubernetes"}
REF_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".tar.xz", ".txz", ".tar.bz2", ".tbz2")  # what ADD unpacks
MAX_UNPACKED_BYTES = 64 * 2**30  # an archive's content; real ClusterImages are a few GiB
MAX_UNPACK_RATIO = 100  # binaries and images compress 2-5x; a bomb, thousands of times


class ImageError(SealerError):
    pass


def sealer_home() -> Path:
    return Path(os.environ.get("SEALER_HOME") or Path.home() / ".sealer")


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
        raw = beneath.read_file(rootfs, "Metadata")  # a link to elsewhere is refused
    except (beneath.LinkRefused, OSError) as e:
        raise ImageError(f"{name}: {e}") from None
    if raw is None:
        raise ImageError(f"{name}: not a ClusterImage: no Metadata file at {path}")
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{path}: Metadata is not valid JSON: {e}") from None
    if not isinstance(metadata, dict):
        raise ImageError(f"{path}: Metadata must be a JSON object")
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
    return metadata


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


def build_image(name: str, rootfs: Path, digest: str | None = None) -> Image:
    metadata = read_metadata(rootfs, name)
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
    )


# ---- the local store: $SEALER_HOME/images/<ref>/{rootfs/, image.json} ----


def _store_dir(ref: str) -> Path:
    return sealer_home() / "images" / ref.replace("/", "%2F")


def is_image_ref(value: str) -> bool:
    return bool(REF_PATTERN.match(value)) and not value.endswith(TAR_SUFFIXES)


def resolve(spec_image: str, base_dir: Path) -> Image:
    """Find the image spec.image names: a path (relative to base_dir) or NAME:TAG in the store."""
    path = Path(spec_image)
    if not path.is_absolute():
        path = base_dir / path
    if path.exists():
        return _from_path(spec_image, path)
    if is_image_ref(spec_image):
        return from_store(spec_image)
    raise ImageError(f"image {spec_image!r}: no such folder or archive at {path}")


def from_store(ref: str) -> Image:
    folder = _store_dir(ref)
    info_path = folder / "image.json"
    if not info_path.is_file():
        raise ImageError(
            f"image {ref!r} is not in the local store ({sealer_home() / 'images'}); "
            f"load it with: sealer image load PATH --name {ref} (a rootfs folder or a "
            f"`sealer image save` archive), or build it with: sealer build -t {ref} CONTEXT; "
            "`sealer image ls` lists the store"
        )
    info = json.loads(info_path.read_text())
    return build_image(ref, folder / "rootfs", digest=info["digest"])


def _from_path(name: str, path: Path) -> Image:
    if path.is_dir():
        return build_image(name, path)
    if path.name.endswith(TAR_SUFFIXES):
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
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise ImageError(f"{archive}: unsafe path in archive: {member.name!r}")
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


def load_into_store(source: Path, name: str | None, force: bool = False) -> Image:
    """`sealer image load`: copy a rootfs folder or archive into the store under NAME:TAG.

    Another image already stored under that name is replaced only with force."""
    if not source.exists():
        raise ImageError(f"{source}: no such folder or archive")
    rootfs = _unpacked(source) if source.is_file() else source
    image = build_image(str(source), rootfs)
    ref = name or (_saved_name(source) if source.is_file() else None)
    ref = ref or f"{image.runtime}:{image.version}"
    held = store_record(ref)
    if held and held.get("digest") != image.digest and not force:
        raise ImageError(
            f"{ref} is already in the store with another content ({held.get('digest', '?')[:19]});"
            f" pass --force to replace it"
        )
    return store(ref, rootfs, image.digest)


def store(ref: str, rootfs: Path, digest: str, record: dict | None = None, move=False) -> Image:
    """Put a rootfs into the store under ref (replacing what was there), atomically."""
    if not is_image_ref(ref):
        raise ImageError(f"image name {ref!r} is not of the form NAME:TAG")
    image = build_image(ref, rootfs, digest=digest)
    folder = _store_dir(ref)
    staging = Path(tempfile.mkdtemp(dir=_ensure(folder.parent)))
    try:
        if move:
            os.rename(rootfs, staging / "rootfs")
        else:
            shutil.copytree(rootfs, staging / "rootfs", symlinks=True)
        info = {
            "name": ref,
            "digest": digest,
            "version": image.version,
            "runtime": image.runtime,
            **(record or {}),
        }
        (staging / "image.json").write_text(json.dumps(info, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return build_image(ref, folder / "rootfs", digest=digest)


def store_record(ref: str) -> dict | None:
    """The store's image.json for ref, or None when ref is not in the store."""
    try:
        return json.loads((_store_dir(ref) / "image.json").read_text())
    except (OSError, ValueError):
        return None


def remove_from_store(ref: str) -> None:
    folder = _store_dir(ref)
    if not (folder / "image.json").is_file():
        raise ImageError(
            f"image {ref!r} is not in the local store ({sealer_home() / 'images'}); "
            "`sealer image ls` lists it"
        )
    shutil.rmtree(folder)


NAME_HEADER = "SEALER.image.name"  # a pax header of saved archives: load's default name


def save(ref: str, out: Path) -> Image:
    """`sealer image save`: the rootfs as a tar (load reads it back with the same digest)."""
    image = from_store(ref)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT, pax_headers={NAME_HEADER: ref}) as t:
            for entry in sorted(os.listdir(image.rootfs)):
                t.add(os.path.join(image.rootfs, entry), arcname=entry)
        os.replace(tmp, out)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ImageError(f"{out}: cannot write the archive: {e.strerror}") from None
    return image


def _saved_name(archive: Path) -> str | None:
    try:
        with tarfile.open(archive) as t:
            name = t.pax_headers.get(NAME_HEADER)
    except (tarfile.TarError, OSError):
        return None
    return name if name and is_image_ref(name) else None


def list_store() -> list[dict]:
    root = sealer_home() / "images"
    if not root.is_dir():
        return []
    records = []
    for info in sorted(root.glob("*/image.json")):
        try:
            records.append(json.loads(info.read_text()))
        except ValueError:
            continue
    return records


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
