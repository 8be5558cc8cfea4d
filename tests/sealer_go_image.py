"""ClusterImages as real sealer (v0.9+) writes them, made from its Go types, not by this
project's builder: an OCI layout whose manifest carries the annotations of
pkg/define/image/v1/sealer_image.go (ImageExtension, ContainerImage) and whose config carries
buildah's labels. Layers are written here with tarfile, whiteouts included."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def folder_entries(folder: Path) -> list[tuple[str, bytes] | tarfile.TarInfo]:
    """A rootfs folder as layer entries (files and links)."""
    entries: list = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                info = tarfile.TarInfo(relative)
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                entries.append(info)
            elif path.is_file():
                info = tarfile.TarInfo(relative)
                data = path.read_bytes()
                info.size, info.mode = len(data), path.stat().st_mode & 0o777
                entries.append(
                    (relative, data) if info.mode & 0o111 == 0 else _exec(relative, data)
                )
    return entries


def _exec(name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o755
    return _WithData(info, data)


class _WithData(tarfile.TarInfo):
    """A TarInfo that carries its content (executables keep their mode)."""

    def __init__(self, info: tarfile.TarInfo, data: bytes):
        super().__init__(info.name)
        self.size, self.mode, self.data = info.size, info.mode, data


def write_layers(entries_per_layer: list[list]) -> list[tuple[bytes, str]]:
    layers = []
    for entries in entries_per_layer:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                if isinstance(entry, _WithData):
                    tar.addfile(entry, io.BytesIO(entry.data))
                elif isinstance(entry, tarfile.TarInfo):
                    tar.addfile(entry)
                else:
                    name, content = entry
                    info = tarfile.TarInfo(name)
                    info.size = len(content)
                    info.mode = 0o755 if name.endswith(".sh") else 0o644
                    tar.addfile(info, io.BytesIO(content))
        plain = raw.getvalue()
        layers.append(
            (gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest())
        )
    return layers


def image_extension(launch_cmds: list[str], image_type: str = "kube-installer") -> dict:
    """v1.ImageExtension as sealer's build marshals it (json tags of sealer_image.go)."""
    return {
        "buildClient": {"sealerVersion": "v0.9.3", "buildahVersion": "1.27.1"},
        "schemaVersion": "v1alpha1",
        "type": image_type,
        "launch": {"cmds": launch_cmds},
    }


def write_image(
    layout: Path,
    tag: str,
    layers: list[tuple[bytes, str]],
    extension: dict | str,
    labels: dict,
    arch: str = "amd64",
    container_images: list[dict] | None = None,
) -> str:
    """An ociv1.Manifest with sealer's annotations; returns its digest. extension may be a raw
    string (an annotation that is not JSON)."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors = [
        {"mediaType": OCI_LAYER, "digest": _blob(layout, data), "size": len(data)}
        for data, _ in layers
    ]
    config = json.dumps({
        "created": "2022-12-14T13:02:50.93707+08:00",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Labels": {"io.buildah.version": "1.27.1", **labels}},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        "history": [{"created_by": "/bin/sh -c #(nop) COPY dir:... in . "}],
    }).encode()  # fmt: skip
    annotations = {
        "org.opencontainers.image.base.digest": "",
        "sealer.image.extension": extension
        if isinstance(extension, str)
        else json.dumps(extension),
    }
    if container_images is not None:
        annotations["sealer.image.container.images"] = json.dumps(container_images)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _blob(layout, config), "size": len(config)},
        "layers": descriptors,
        "annotations": annotations,
    }).encode()  # fmt: skip
    digest = _blob(layout, manifest)
    index_path = layout / "index.json"
    index = (
        json.loads(index_path.read_text())
        if index_path.exists()
        else {"schemaVersion": 2, "manifests": []}
    )
    index["manifests"] = [m for m in index["manifests"] if m["annotations"][REF_NAME] != tag] + [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "annotations": {REF_NAME: tag}}
    ]  # fmt: skip
    index_path.write_text(json.dumps(index))
    return digest
