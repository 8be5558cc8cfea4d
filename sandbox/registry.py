"""The sandbox's source registry: container images for the examples, with no internet.

These machines reach no registry of container images, so `sealer build` of the examples
(examples/apps) copies its images from a registry on this machine: Distribution's registry on
127.0.0.1:PORT (default 5055), seeded with small images made offline (sandbox/oci.py) under
the names the examples' manifests use (`127.0.0.1:5055/sandbox/nginx:1.25`, ...). It runs
detached until `sealer sandbox down`; its files live under $SEALER_HOME/sandbox/registry.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from cluster import registry as registries
from cluster.errors import SealerError
from cluster.image import sealer_home
from imagebuild import local_registry
from sandbox import hosts, oci

DEFAULT_PORT = 5055
ARCHES = ("amd64", "arm64")
# What the examples' manifests name, as REPOSITORY:TAG under the registry's address.
IMAGES = ("sandbox/nginx:1.25", "sandbox/redis:7.2")


@dataclass(frozen=True)
class Running:
    address: str  # 127.0.0.1:PORT
    images: tuple[str, ...]  # ADDRESS/REPOSITORY:TAG, what it serves
    started: bool  # False: it was already running


def folder() -> Path:
    return sealer_home() / "sandbox" / "registry"


def _pid() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((folder() / "registry.pid").read_text())
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"serve"]:
            return pid
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def up(port: int = DEFAULT_PORT) -> Running:
    """Start the registry (once) and make sure it holds every image of IMAGES."""
    if not 1 <= port <= 65535:
        raise SealerError(f"sandbox registry: port {port} is not a TCP port")
    address = f"127.0.0.1:{port}"
    started = False
    running = _pid()
    recorded = (folder() / "address").read_text() if running else ""
    if running and recorded != address:
        raise SealerError(
            f"sandbox registry: already running on {recorded}; `sealer sandbox down` stops it"
        )
    if not running:
        if not _port_free(port):
            raise SealerError(
                f"sandbox registry: 127.0.0.1:{port} is taken by another program; "
                "choose another with --port"
            )
        _start(address)
        started = True
    _seed(address)
    return Running(address, tuple(f"{address}/{name}" for name in IMAGES), started)


def _start(address: str) -> None:
    home = folder()
    (home / "storage").mkdir(parents=True, exist_ok=True)
    config = registries.distribution_config(str(home / "storage"), address)
    (home / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = open(home / "registry.log", "w+b")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        [local_registry.binary(), "serve", str(home / "config.yml")],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives this command, like the sandbox hosts
    )
    (home / "registry.pid").write_text(str(process.pid))
    (home / "address").write_text(address)
    try:
        local_registry.wait_ready(f"http://{address}/v2/", process, log)
    except SealerError:
        down()
        raise
    finally:
        log.close()


def _seed(address: str) -> None:
    """Push each image (a tiny image per arch: a file naming it); pushing again is a no-op."""
    with tempfile.TemporaryDirectory(prefix="sealer-sandbox-images-") as tmp:
        layout = Path(tmp) / "layout"
        for name in IMAGES:
            note = f"sealer sandbox image {name}: made offline, runs nothing\n".encode()
            oci.multi_arch_image(layout, name.replace("/", "-"), ARCHES, {"README": note})
            try:
                oci.push(layout, name.replace("/", "-"), address, name)
            except subprocess.CalledProcessError as error:
                reason = (error.stderr or b"").decode(errors="replace").strip()[-300:]
                raise SealerError(f"sandbox registry: pushing {name} failed: {reason}") from None


def down() -> bool:
    """Stop the registry; its stored images stay for the next `up`. True if it ran."""
    pid = _pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    hosts.wait_gone(pid)
    if hosts.alive(pid):  # only then: once it is gone, its pid may be another process's
        os.kill(pid, signal.SIGKILL)
        hosts.wait_gone(pid)
    (folder() / "registry.pid").unlink(missing_ok=True)
    return True
