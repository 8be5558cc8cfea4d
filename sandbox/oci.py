"""Small container images made offline: an OCI image layout written here, pushed with skopeo.

The sandbox's source registry (sandbox/registry.py) and the tests seed registries with them,
since these machines reach no registry of container images.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

from cluster.oci.layout import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME
from cluster.oci.layout import OCI_LAYER_GZIP as OCI_LAYER


def write_blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar layer and its diff id (the digest of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def add_to_index(layout: Path, descriptor: dict, tag: str) -> None:
    """index.json names `descriptor` as `tag` (replacing an older entry of that tag)."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2}
    kept = [m for m in index.get("manifests", []) if m["annotations"][REF_NAME] != tag]
    index["manifests"] = kept + [{**descriptor, "annotations": {REF_NAME: tag}}]
    index_path.write_text(json.dumps(index))


def oci_image(layout: Path, tag: str, layers: list[dict[str, bytes]], arch: str = "amd64") -> str:
    """Write (or add to) an OCI layout holding one image; returns its manifest digest."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors, diff_ids = [], []
    for files in layers:
        data, diff_id = layer(files)
        descriptors.append(
            {"mediaType": OCI_LAYER, "digest": write_blob(layout, data), "size": len(data)}
        )
        diff_ids.append(diff_id)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": write_blob(layout, config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    digest = write_blob(layout, manifest)
    add_to_index(layout, {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}, tag)
    return digest


def multi_arch_image(
    layout: Path, tag: str, arches: tuple[str, ...], files: dict[str, bytes] | None = None
) -> dict[str, str]:
    """An OCI image index with one small image per arch; returns arch -> manifest digest.
    Each image holds `files` and a file named after its arch."""
    digests = {
        arch: oci_image(layout, f"{tag}-{arch}", [{**(files or {}), arch: arch.encode()}], arch)
        for arch in arches
    }
    manifests = []
    for arch, digest in digests.items():
        size = (layout / "blobs" / "sha256" / digest.split(":")[1]).stat().st_size
        manifests.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
             "platform": {"architecture": arch, "os": "linux"}}
        )  # fmt: skip
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    ).encode()
    descriptor = {"mediaType": OCI_INDEX, "digest": write_blob(layout, index), "size": len(index)}
    add_to_index(layout, descriptor, tag)
    return digests


def push(layout: Path, tag: str, address: str, name: str) -> None:
    """skopeo copy --all oci:LAYOUT:TAG docker://ADDRESS/NAME (plain HTTP: on loopback)."""
    subprocess.run(
        [
            "skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
            f"oci:{layout}:{tag}", f"docker://{address}/{name}",
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
