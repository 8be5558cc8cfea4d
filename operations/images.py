"""`sealer build` and `sealer image ...`: the local ClusterImage store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cluster import image as images
from cluster.errors import SealerError
from cluster.model import Image
from cluster.oci import archives, sealer_format, transfer
from cluster.oci import store as oci_store


@dataclass(frozen=True)
class BuildRequest:
    context: str
    tag: str
    kubefile: str | None = None  # default: CONTEXT/Kubefile
    build_args: tuple[str, ...] = ()  # NAME=VALUE
    no_cache: bool = False
    run_timeout: float = 3600.0  # seconds one RUN may take
    memory: int = 8 * 2**30  # address space of each RUN process, bytes
    image_type: str | None = None  # "kube-installer" or "app-installer": checked on the result
    collect_images: bool = True  # --build-mode all (lite: no container images copied)
    ignored_image_list: str | None = None  # a file of container images not to copy
    platform: str | None = None  # linux/ARCH[/VARIANT]: which variant of each image to copy


def build(request: BuildRequest):
    """Build a ClusterImage from a Kubefile into the store; returns the builder's summary."""
    from imagebuild.builder import Builder

    values = {}
    for item in request.build_args:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SealerError(f"--build-arg {item!r}: expected NAME=VALUE")
        values[name] = value
    context = Path(request.context)
    kubefile = Path(request.kubefile) if request.kubefile else context / "Kubefile"
    ignored = _ignored_images(request.ignored_image_list)
    builder = Builder(
        kubefile,
        context,
        request.tag,
        values,
        request.no_cache,
        run_timeout=request.run_timeout,
        memory=request.memory,
        image_type=request.image_type,
        collect_images=request.collect_images,
        ignored_images=ignored,
        platform=request.platform,
    )
    return builder.build()


def _ignored_images(path: str | None) -> frozenset[str]:
    if not path:
        return frozenset()
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SealerError(f"--ignored-image-list {path}: {e}") from None
    return frozenset(
        line.strip() for line in lines if line.strip() and not line.strip().startswith("#")
    )


def load(path: str, name: str | None = None, force: bool = False) -> list[str]:
    """`sealer load -i FILE` (and `sealer image load PATH`): a line for each image stored."""
    lines = []
    for stored in images.load_into_store(Path(path), name, force):
        digest, platforms = oci_store.describe(stored)
        lines.append(f"{stored} ({digest}; {', '.join(platforms)})")
        if Path(path).is_dir() and not archives.is_oci_archive(Path(path)):  # a rootfs
            image = images.from_store(stored)
            lines[-1] = f"{stored} ({image.runtime or 'apps'} {image.version}, {digest})"
    return lines


def list_images() -> tuple[Path, list[dict]]:
    """The store's folder and its images' rows (name, digest, platforms, size)."""
    return images.sealer_home() / "oci", images.list_store()


@dataclass(frozen=True)
class Inspected:
    image: Image
    metadata: dict
    labels: dict
    build: dict = field(default_factory=dict)  # base, kubefile, created (built images)
    spec: dict = field(default_factory=dict)  # sealer's ImageSpec (images in the OCI store)

    def to_json(self) -> dict:
        """sealer's ImageSpec (id, name, digest, manifestv1, ociv1, imageExtension,
        containerImageList), plus what this sealer reads from it."""
        return {
            **self.spec,
            "name": self.image.name,
            "digest": self.image.digest,
            "runtime": self.image.runtime,
            "version": self.image.version,
            "platforms": list(self.image.platforms),
            "labels": self.labels,
            "kind": self.image.kind,
            "launch_commands": list(self.image.launch_cmds),
            "launch_apps": list(self.image.launch_apps),
            "apps": [
                {**app.to_json(), "launch_commands": app.launch_commands()}
                for app in self.image.apps
            ],
            "metadata": self.metadata,
            "build": self.build,
        }


def inspect(name: str, platform: str = "") -> Inspected:
    arch = transfer.parse_platform(platform)[1] if platform else ""
    image = images.from_store(name, arch)
    record = images.store_record(name) or {}
    spec = {}
    metadata: dict
    if oci_store.find(name):
        opened = oci_store.open_image(name, arch)
        metadata = opened.metadata
        spec = _image_spec(opened)
    else:
        metadata = images.read_metadata(Path(image.rootfs), name)
    return Inspected(
        image,
        metadata,
        image.labels,
        {k: record[k] for k in ("base", "kubefile", "created") if k in record},
        spec,
    )


def _image_spec(opened) -> dict:
    """sealer's ImageSpec of one instance: the manifest without sealer's two annotations, the
    config without its labels (they are the extension's), the extension and the image list."""
    instance = opened.instance
    manifest = json.loads(json.dumps(instance.manifest))
    annotations = manifest.get("annotations") or {}
    extension = sealer_format.extension(annotations, opened.name) or {}
    listed = sealer_format.container_images(annotations, opened.name)
    for key in (sealer_format.EXTENSION, sealer_format.CONTAINER_IMAGES):
        annotations.pop(key, None)
    config = json.loads(json.dumps(instance.config))
    labels = (config.get("config") or {}).pop("Labels", None) or {}
    extension = {**extension, "labels": labels}
    return {
        "id": instance.manifest["config"]["digest"].split(":", 1)[1],
        "name": opened.name,
        "digest": opened.digest,
        "manifestv1": manifest,
        "ociv1": config,
        "imageExtension": extension,
        "containerImageList": listed,
    }


def save(names: list[str], output: str, fmt: str = "oci-archive") -> list[str]:
    return images.save(list(names), Path(output), fmt)


def remove(name: str) -> None:
    images.remove_from_store(name)
