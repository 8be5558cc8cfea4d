"""`sealer build` and `sealer image ...`: the local ClusterImage store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster import image as images
from cluster.errors import SealerError
from cluster.model import Image


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


def load(path: str, name: str | None, force: bool = False) -> Image:
    return images.load_into_store(Path(path), name, force)


def list_images() -> tuple[Path, list[dict]]:
    """The store's folder and its images' records."""
    return images.sealer_home() / "images", images.list_store()


@dataclass(frozen=True)
class Inspected:
    image: Image
    metadata: dict
    labels: dict
    build: dict = field(default_factory=dict)  # base, kubefile, created (built images)

    def to_json(self) -> dict:
        return {
            "name": self.image.name,
            "digest": self.image.digest,
            "runtime": self.image.runtime,
            "version": self.image.version,
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


def inspect(name: str) -> Inspected:
    image = images.from_store(name)
    record = images.store_record(name) or {}
    metadata = images.read_metadata(Path(image.rootfs), name)
    return Inspected(
        image,
        metadata,
        metadata.get("labels") or {},
        {k: record[k] for k in ("base", "kubefile", "created") if k in record},
    )


def save(name: str, output: str) -> Image:
    return images.save(name, Path(output))


def remove(name: str) -> None:
    images.remove_from_store(name)
