"""Copy a ClusterImage's rootfs to a host: one tar stream per host, skipped when already there.

The host keeps a marker with the image digest (and the digest of the rendered Config
documents); a host whose marker matches gets nothing. The tarball is built once per image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import tarfile
import tempfile
import threading
from pathlib import Path

from cluster import beneath
from cluster import configs as configs_module
from cluster.errors import SealerError
from cluster.image import sealer_home
from cluster.model import Document, Image
from cluster.names import DEFAULT_DATA_ROOT, cluster_name_problem, data_root_problem
from executors import delta
from executors.driver import HostError, Remote
from executors.facts import MARKER

DATA_ROOT = DEFAULT_DATA_ROOT
REGISTRY = "registry"  # the image's container images (executors/registry.py serves them)
_tar_lock = threading.Lock()


def rootfs_dir(cluster_name: str, data_root: str = DATA_ROOT) -> str:
    """Where a cluster's rootfs lives on a host (spec.dataRoot). The name and the folder may
    come from a state file, so they are checked here, the one place they become a path in
    commands."""
    problem = cluster_name_problem(cluster_name)
    if problem:
        raise SealerError(f"cluster {cluster_name!r} {problem}; refused")
    if data_root_problem(data_root):
        raise SealerError(f"dataRoot {data_root!r} {data_root_problem(data_root)}; refused")
    return f"{data_root}/{cluster_name}/rootfs"


def tarball(image: Image, configs: dict[str, bytes]) -> Path:
    """An uncompressed tar of the rootfs with the rendered configs, built once and cached."""
    folder = sealer_home() / "cache" / "rootfs"
    key = hashlib.sha256(
        f"{marker(image, configs)} tar:root-owned,no-registry,manifest".encode()
    ).hexdigest()
    path = folder / f"{key}.tar"
    with _tar_lock:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
                for entry in sorted(os.listdir(image.rootfs)):
                    if entry == REGISTRY:  # only registry hosts get it, blob by blob
                        continue
                    tar.add(
                        os.path.join(image.rootfs, entry),
                        arcname=entry,
                        filter=lambda info: None if info.name in configs else root_owned(info),
                    )
                for name, content in sorted(configs.items()):
                    add_file(tar, name, content, 0o644)
                add_file(tar, delta.MANIFEST, _manifest_bytes(image), 0o644)
            os.replace(tmp, path)
    return path


def _manifest_bytes(image: Image) -> bytes:
    entries = delta.manifest(image.rootfs, image.digest, frozenset({REGISTRY}))
    return json.dumps(entries, sort_keys=True).encode()


def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files on the hosts belong to root, not to whoever ran sealer on the operator's machine."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def add_file(tar: tarfile.TarFile, name: str, content: bytes, mode: int, mtime: int = 0) -> None:
    """A root-owned file made of content in a tar being written."""
    info = root_owned(tarfile.TarInfo(name))
    info.size, info.mode, info.mtime = len(content), mode, mtime
    tar.addfile(info, io.BytesIO(content))


def rendered_configs(image: Image, configs: tuple[Document, ...]) -> dict[str, bytes]:
    """Config documents rendered against the image's files: path -> content."""
    files = {}
    for doc in sorted(configs, key=lambda d: d.name):
        spec = doc.body["spec"]
        path = configs_module.path_of(spec)
        # never through a link: it could lead to any file of the operator's machine
        original = beneath.read_file(Path(image.rootfs), path)
        text = None if original is None else original.decode(errors="replace")
        try:
            files[path] = configs_module.written(spec, text).encode()
        except SealerError as e:
            raise SealerError(f"Config {doc.name!r} ({path}): {e}") from None
    return files


def marker(image: Image, configs: dict[str, bytes]) -> str:
    digest = hashlib.sha256(
        json.dumps({k: v.decode(errors="replace") for k, v in sorted(configs.items())}).encode()
    )
    return f"{image.digest} configs:{digest.hexdigest()[:16]}"


def distribute(
    remote: Remote,
    image: Image,
    cluster_name: str,
    configs: dict[str, bytes],
    current: str,
    then: str = "",
    alone: bool = False,
    data_root: str = DATA_ROOT,
    received: bool = False,
) -> bool:
    """Make the host hold this rootfs, then run `then` there. True if anything was copied.

    current is the marker the host reported (facts.name_and_marker); a host that holds this
    rootfs gets no byte. alone: no other host copies meanwhile (see Remote.upload).
    received: the relay left the host a verified unpacked copy of the image; if installing it
    fails, the tarball is sent directly.
    """
    target = rootfs_dir(cluster_name, data_root)
    wanted = marker(image, configs)
    if current == wanted:
        if then:
            remote.run(then)
        return False
    if received:
        try:
            install_received(remote, image, cluster_name, configs, data_root)
        except HostError:
            pass  # a direct copy below
        else:
            if then:
                remote.run(then)
            return True
    elif current and _send_delta(remote, image, configs, target, wanted, then):
        return True  # the host held an older rootfs: only what changed went
    remote.upload(
        _staged_install(target, wanted, lambda staging: f"tar xf - -C {staging}")
        + (f" && {then}" if then else ""),
        str(tarball(image, configs)),
        alone=alone,
    )
    return True


def _staged_install(target: str, wanted: str, fill) -> str:
    """The host's side of a full install: fill(staging) unpacks into a fresh folder beside the
    rootfs, which gets the marker and then takes the rootfs' place."""
    target, staging = shlex.quote(target), shlex.quote(f"{target}.new")
    return (
        f"rm -rf {staging} && mkdir -p {staging} && {fill(staging)} && "
        f"echo {shlex.quote(wanted)} > {staging}/{MARKER} && rm -rf {target} && "
        f"mv {staging} {target}"
    )


def _send_delta(
    remote: Remote, image: Image, configs: dict[str, bytes], target: str, wanted: str, then: str
) -> bool:
    """Send only the files that changed since the rootfs the host holds (executors/delta.py).
    False when the host has no usable manifest, or the delta failed: then a full copy."""
    said = remote.run(f"cat {shlex.quote(target)}/{delta.MANIFEST} 2>/dev/null; true")
    old = delta.read_host_manifest(said.stdout)
    if old is None:
        return False
    new = delta.manifest(image.rootfs, image.digest, frozenset({REGISTRY}))
    extra = {**configs, delta.MANIFEST: json.dumps(new, sort_keys=True).encode()}
    content, _ = delta.delta_tar(image.rootfs, new, old, extra, root_owned)
    try:
        remote.stream(delta.apply_command(target, wanted, MARKER), [content])
    except HostError:
        return False
    if then:
        remote.run(then)
    return True


def received_path(cluster_name: str, data_root: str = DATA_ROOT) -> str:
    """Where the relay (executors/relay.py) leaves a host's verified, unpacked copy of the
    image."""
    return f"{rootfs_dir(cluster_name, data_root)}.relay"


def install_received(
    remote: Remote,
    image: Image,
    cluster_name: str,
    configs: dict[str, bytes],
    data_root: str = DATA_ROOT,
) -> None:
    """Install the unpacked image the relay left on the host, with the rendered Configs (sent
    here over SSH: they may hold secrets, so they never travel through other hosts)."""
    received = shlex.quote(received_path(cluster_name, data_root))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in sorted(configs.items()):
            add_file(tar, name, content, 0o644)

    def fill(staging: str) -> str:  # the relayed image (0700 until now), then the Configs
        return (
            f"rmdir {staging} && mv {received} {staging} && chmod 755 {staging} && "
            f"tar xf - -C {staging}"
        )

    command = _staged_install(rootfs_dir(cluster_name, data_root), marker(image, configs), fill)
    remote.stream(command, [buffer.getvalue()])


def remove(remote: Remote, cluster_name: str, data_root: str = DATA_ROOT) -> None:
    folder = shlex.quote(os.path.dirname(rootfs_dir(cluster_name, data_root)))
    remote.run(f"rm -rf {folder}; rmdir {shlex.quote(data_root)} 2>/dev/null; true")
