"""Copy a ClusterImage's rootfs to a host: one tar stream per host, skipped when already there.

The host keeps a marker with the image digest (and the digest of the rendered Config
documents); a host whose marker matches gets nothing. The tarball is built once per image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tarfile
import tempfile
import threading
from pathlib import Path

from cluster.image import sealer_home
from cluster.model import Document, Image
from executors.driver import Remote

DATA_ROOT = "/var/lib/sealer/data"
MARKER = ".sealer-digest"
CHUNK = 1 << 20
_tar_lock = threading.Lock()


def rootfs_dir(cluster_name: str) -> str:
    return f"{DATA_ROOT}/{cluster_name}/rootfs"


def tarball(image: Image) -> Path:
    """An uncompressed tar of the rootfs, built once per image digest and cached."""
    folder = sealer_home() / "cache" / "rootfs"
    path = folder / f"{image.digest.split(':', 1)[1]}.tar"
    with _tar_lock:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
                for entry in sorted(os.listdir(image.rootfs)):
                    tar.add(os.path.join(image.rootfs, entry), arcname=entry)
            os.replace(tmp, path)
    return path


def rendered_configs(image: Image, configs: tuple[Document, ...]) -> dict[str, bytes]:
    """Config documents rendered against the image's files: path -> content."""
    files = {}
    for doc in sorted(configs, key=lambda d: d.name):
        spec = doc.body["spec"]
        data = spec.get("data", "")
        original = Path(image.rootfs) / spec["path"]
        if spec.get("strategy") == "merge" and original.is_file():
            data = _merge_yaml(original.read_text(), data)
        files[spec["path"]] = data.encode()
    return files


def _merge_yaml(base: str, overlay: str) -> str:
    import yaml

    def merge(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
        return b

    try:
        return yaml.safe_dump(merge(yaml.safe_load(base), yaml.safe_load(overlay)), sort_keys=False)
    except yaml.YAMLError:
        return base.rstrip("\n") + "\n" + overlay  # not YAML: append, as a text merge


def marker(image: Image, configs: dict[str, bytes]) -> str:
    digest = hashlib.sha256(
        json.dumps({k: v.decode(errors="replace") for k, v in sorted(configs.items())}).encode()
    )
    return f"{image.digest} configs:{digest.hexdigest()[:16]}"


def distribute(remote: Remote, image: Image, cluster_name: str, configs: dict[str, bytes]) -> bool:
    """Make the host hold this rootfs. True if anything was copied."""
    target = rootfs_dir(cluster_name)
    wanted = marker(image, configs)
    current = remote.run(f"cat {target}/{MARKER} 2>/dev/null", check=False).stdout.strip()
    if current == wanted:
        return False
    staging = f"{target}.new"
    remote.stream(
        f"rm -rf {staging} && mkdir -p {staging} && tar xf - -C {staging}", _chunks(tarball(image))
    )
    for path, content in configs.items():
        remote.run(f"cat > {shlex.quote(f'{staging}/{path}')}", stdin=content)
    remote.run(
        f"echo {shlex.quote(wanted)} > {staging}/{MARKER} && rm -rf {target} && "
        f"mv {staging} {target}"
    )
    return True


def _chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def remove(remote: Remote, cluster_name: str) -> None:
    remote.run(f"rm -rf {DATA_ROOT}/{cluster_name}; rmdir {DATA_ROOT} 2>/dev/null; true")
