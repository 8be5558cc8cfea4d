"""A real registry (Distribution's `registry serve`) on 127.0.0.1, for as long as a build needs it.

`sealer build` pushes the collected images into it with skopeo; its storage folder is the
image's `registry/`, in the layout a stock registry serves as is on the cluster. Blobs are kept
once by digest, so layers shared between images are stored once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from cluster import registry as registries
from cluster.errors import SealerError

BINARY_NAMES = ("registry", "docker-registry")  # upstream's name, Debian's name
START_TIMEOUT = 30.0


def binary(rootfs: Path | None = None) -> str:
    """The registry program: $SEALER_REGISTRY_BINARY, then PATH, then beside sealer's own
    Python (where scripts/setup puts it: .venv/bin), then the image's own bin/."""
    candidates = [os.environ.get("SEALER_REGISTRY_BINARY", "")]
    candidates += [shutil.which(name) or "" for name in BINARY_NAMES]
    beside_sealer = Path(sys.executable).parent  # not resolved: a venv's bin/, not /usr/bin
    candidates += [str(beside_sealer / name) for name in BINARY_NAMES]
    if rootfs is not None:
        candidates += [str(rootfs / "bin" / name) for name in BINARY_NAMES]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and not os.path.islink(candidate):
            return candidate
    raise SealerError(
        "collecting container images needs a registry program (Distribution's `registry`, "
        "Debian's docker-registry package) on PATH, beside sealer (scripts/setup puts one in "
        ".venv/bin) or in the image's bin/; none found"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(storage: Path, program: str):
    """A registry serving `storage` on 127.0.0.1:PORT; yields "127.0.0.1:PORT"."""
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="sealer-registry-") as tmp:
        config_path = Path(tmp) / "config.yml"
        config = registries.distribution_config(str(storage), address)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        with open(Path(tmp) / "registry.log", "w+b") as log:
            process = subprocess.Popen(
                [program, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
            )
            try:
                wait_ready(f"http://{address}/v2/", process, log)
                yield address
            finally:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_ready(url: str, process: subprocess.Popen, log, ca: str | None = None) -> None:
    """Until the registry answers at url (HTTPS checked against the CA file ca)."""
    import ssl

    context = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SealerError(
                f"the build's registry exited with {process.returncode}: "
                f"{log.read().decode(errors='replace').strip()[-300:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 with auth): it is up
        except OSError:
            time.sleep(0.05)
    raise SealerError(f"the build's registry did not answer on {url} in {START_TIMEOUT:g}s")
