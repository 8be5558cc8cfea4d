"""Copy container images into a ClusterImage's `registry/` folder with skopeo.

Each image goes from its source registry into a registry (Distribution) that serves the
rootfs' `registry/` folder on 127.0.0.1 for the build; skopeo skips the blobs the folder has
already (from the base image, or another image sharing a layer), and `--preserve-digests`
keeps every manifest byte for byte, so the cluster serves the digest the source had.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import tempfile
from pathlib import Path

from cluster.errors import SealerError
from imagebuild import local_registry
from imagebuild.containers import ContainerImage

REGISTRY_DIR = "registry"
COPY_TIMEOUT = 1800.0


class CollectError(SealerError):
    pass


def is_loopback(domain: str) -> bool:
    """Registries on this machine speak plain HTTP without asking (as Docker treats
    127.0.0.0/8): a local source registry needs no TLS."""
    host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def skopeo() -> str:
    found = shutil.which("skopeo")
    if not found:
        raise CollectError(
            "collecting container images needs skopeo (Debian's skopeo package) on PATH"
        )
    return found


def copy_all(
    images: list[ContainerImage],
    rootfs: Path,
    arch: str,
    say,
    insecure: tuple[str, ...] = (),
    variant: str = "",
) -> list[dict]:
    """Copy each image into rootfs/registry; the list Metadata keeps (name, source, digest)."""
    if not images:
        return []
    tool = skopeo()
    program = local_registry.binary(rootfs)
    copied = []
    with local_registry.running(rootfs / REGISTRY_DIR, program) as address:
        for image in images:
            digest = _copy(tool, image, address, arch, variant, insecure)
            say(f" ---> {image.source} -> {image.served_as} ({digest[:19]})")
            copied.append(
                {
                    "name": image.served_as,
                    "source": image.source,
                    "digest": digest,
                    "from": image.where,
                }
            )
    return copied


def _copy(
    tool: str,
    image: ContainerImage,
    address: str,
    arch: str,
    variant: str,
    insecure: tuple[str, ...],
) -> str:
    with tempfile.TemporaryDirectory(prefix="sealer-copy-") as tmp:
        digest_file = Path(tmp) / "digest"
        argv = [tool, "copy", "--quiet", "--preserve-digests", "--retry-times", "2"]
        argv += ["--override-os", "linux", "--override-arch", arch]
        if variant:
            argv += ["--override-variant", variant]
        if is_loopback(image.domain) or image.domain in insecure:
            argv.append("--src-tls-verify=false")
        argv += ["--dest-tls-verify=false", "--digestfile", str(digest_file)]
        argv += [f"docker://{image.source}", f"docker://{address}/{image.served_as}"]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=COPY_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise CollectError(
                f"{image.where}: container image {image.ref}: still copying after "
                f"{COPY_TIMEOUT:g}s; stopped"
            ) from None
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["skopeo failed"])[-1]
            raise CollectError(
                f"{image.where}: container image {image.ref} could not be copied from "
                f"{image.domain}: {reason[-300:]}"
            )
        return digest_file.read_text().strip()
