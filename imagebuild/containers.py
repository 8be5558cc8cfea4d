"""Which container images a ClusterImage needs, found where sealer (Go) looks for them.

- `manifests/imageList` in the rootfs (and `imageList` at the top of the build context): one
  image per line, `#` comments;
- `image:` lines of the YAML files under `manifests/` and of the apps under `application/apps/`
  (sealer reads them line by line, and so does this, which gives every image its file:line);
- helm charts (`charts/`, chart apps): their manifests as `helm template` renders them, where a
  helm binary is on PATH.

Templated values (`{{ ... }}`, `${...}`) are not images yet; they are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cluster import apps
from cluster.errors import SealerError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".tmpl")
IMAGE_LINE = re.compile(r"""^\s*(?:-\s+)?["']?image["']?\s*:\s*(?P<value>.*?)\s*$""")
# The Distribution reference grammar (docker/distribution/reference), without the odd corners.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?:@(?P<digest>sha256:[a-f0-9]{{64}}))?\Z"
)
DOCKER_HUB = "docker.io"


class ImageRefError(SealerError):
    pass


@dataclass(frozen=True)
class ContainerImage:
    """One image reference as written, where it was found, and its parts."""

    ref: str
    where: str  # FILE:LINE
    domain: str
    path: str
    tag: str
    digest: str

    @property
    def source(self) -> str:
        """What skopeo copies from: the full name."""
        name = f"{self.domain}/{self.path}"
        if self.tag:
            name += f":{self.tag}"
        return name + (f"@{self.digest}" if self.digest else "")

    @property
    def served_as(self) -> str:
        """The name in the image's registry: the path without its registry, as sealer serves
        it (`sea.hub:5000/library/nginx:1.25` for `nginx:1.25`). A digest-only reference keeps
        a tag made of its digest: the manifest is reachable by digest either way."""
        tag = self.tag or (self.digest.replace(":", "-")[:23] if self.digest else "latest")
        return f"{self.path}:{tag}"


def parse(ref: str, where: str) -> ContainerImage:
    m = REFERENCE.match(ref)
    domain = (m and m["domain"]) or ""
    if m and domain and not ("." in domain or ":" in domain or domain == "localhost"):
        # `library/nginx`: the first part is a path component, not a registry
        m = REFERENCE.match(f"{DOCKER_HUB}/{ref}")
        domain = DOCKER_HUB
    if not m:
        raise ImageRefError(f"{where}: {ref!r} is not a container image reference")
    domain = domain or DOCKER_HUB
    path = m["path"]
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    tag = m["tag"] or ("" if m["digest"] else "latest")
    return ContainerImage(ref, where, domain, path, tag, m["digest"] or "")


def find(rootfs: Path, context: Path, warn) -> list[ContainerImage]:
    """Every image the rootfs' manifests, charts and image lists name, first mention first."""
    found: dict[str, ContainerImage] = {}

    def add(ref: str, where: str) -> None:
        ref = ref.strip().strip("'\"").strip()
        if not ref or ref.startswith("#") or "{{" in ref or "${" in ref or "$(" in ref:
            return
        image = parse(ref, where)
        other = found.setdefault(image.served_as, image)
        if other.source != image.source:
            raise ImageRefError(
                f"{where}: {image.source} and {other.source} ({other.where}) would both be "
                f"served as {image.served_as}; keep one"
            )

    for list_file, shown in (
        (context / "imageList", "imageList"),
        (rootfs / "manifests" / "imageList", "manifests/imageList"),
    ):
        if list_file.is_file() and not list_file.is_symlink():
            for number, line in enumerate(_lines(list_file), start=1):
                add(line, f"{shown}:{number}")
    for folder in _manifest_folders(rootfs):
        if _is_chart(folder):
            for ref, where in _chart_images(folder, rootfs, warn):
                add(ref, where)
            continue
        for path in _files(folder):
            if path.name.endswith(MANIFEST_SUFFIXES):
                shown = str(path.relative_to(rootfs))
                for number, line in enumerate(_lines(path), start=1):
                    m = IMAGE_LINE.match(line)
                    if m and m["value"] and not m["value"].startswith(("|", ">")):
                        add(m["value"].split(" #")[0], f"{shown}:{number}")
    return list(found.values())


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode(errors="replace").splitlines()


def _manifest_folders(rootfs: Path) -> list[Path]:
    """manifests/, each chart under charts/, each app folder."""
    folders = []
    manifests = rootfs / "manifests"
    if manifests.is_dir() and not manifests.is_symlink():  # a link could lead off the rootfs
        folders.append(manifests)
    charts = rootfs / "charts"
    if charts.is_dir() and not charts.is_symlink():
        for folder, dirnames, _ in os.walk(charts):
            if _is_chart(Path(folder)):
                folders.append(Path(folder))
                dirnames.clear()
    app_root = rootfs / apps.APPS_DIR
    if app_root.is_dir() and not app_root.is_symlink():
        folders += sorted(p for p in app_root.iterdir() if p.is_dir() and not p.is_symlink())
    return folders


def _files(folder: Path) -> list[Path]:
    """Regular files under folder, links never followed (they could lead off the rootfs)."""
    found = []
    for here, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [Path(here) / n for n in sorted(filenames) if not (Path(here) / n).is_symlink()]
    return found


def _is_chart(folder: Path) -> bool:
    return (folder / "Chart.yaml").is_file() and (folder / "templates").is_dir()


def _chart_images(chart: Path, rootfs: Path, warn) -> list[tuple[str, str]]:
    shown = str(chart.relative_to(rootfs))
    helm = shutil.which("helm")
    if not helm:
        warn(
            f"Warning: {shown}: a helm chart, and no helm binary here to render it; its "
            f"container images are not collected (name them in manifests/imageList)"
        )
        return []
    result = subprocess.run(
        [helm, "template", "sealer-collect", str(chart)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ImageRefError(f"{shown}: helm template failed: {result.stderr.strip()[-300:]}")
    images = []
    for number, line in enumerate(result.stdout.splitlines(), start=1):
        m = IMAGE_LINE.match(line)
        if m and m["value"]:
            images.append((m["value"], f"{shown} (helm template, line {number})"))
    return images
