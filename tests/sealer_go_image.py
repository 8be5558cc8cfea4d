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

from cluster.oci.layout import LAYOUT_BYTES, OCI_CONFIG, OCI_MANIFEST
from cluster.oci.layout import OCI_LAYER_GZIP as OCI_LAYER
from sandbox.oci import add_to_index, write_blob


def folder_entries(folder: Path) -> list:
    """A rootfs folder as layer entries: (TarInfo, content) for files, TarInfo for links."""
    entries: list = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            if path.is_symlink():
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                entries.append(info)
            elif path.is_file():
                data = path.read_bytes()
                info.size, info.mode = len(data), path.stat().st_mode & 0o777
                entries.append((info, data))
    return entries


def write_layers(entries_per_layer: list[list]) -> list[tuple[bytes, str]]:
    """Each list of entries as a gzip'd tar layer: (blob, diff id). An entry is a TarInfo
    (links, whiteouts, devices), a (TarInfo, content) pair, or a (name, content) file."""
    layers = []
    for entries in entries_per_layer:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                if isinstance(entry, tarfile.TarInfo):
                    tar.addfile(entry)
                    continue
                info, content = entry
                if isinstance(info, str):
                    info = tarfile.TarInfo(info)
                    info.mode = 0o755 if info.name.endswith(".sh") else 0o644
                info.size = len(content)
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
    (layout / "oci-layout").write_bytes(LAYOUT_BYTES)
    descriptors = [
        {"mediaType": OCI_LAYER, "digest": write_blob(layout, data), "size": len(data)}
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
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(layout, config), "size": len(config)},
        "layers": descriptors,
        "annotations": annotations,
    }).encode()  # fmt: skip
    digest = write_blob(layout, manifest)
    add_to_index(layout, {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}, tag)
    return digest
