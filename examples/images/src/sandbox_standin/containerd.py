"""The kubelet's container runtime: the host's real containerd, through its own client, ctr.

A real kubelet asks containerd's CRI plugin to pull; the CRI plugin reads the registry hosts
from config.toml's config_path (/etc/containerd/certs.d). ctr is told the same folder with
--hosts-dir, so a pull here reads exactly the hosts.toml files, CA files and mirrors that a
real kubelet's pull would read. Images go to the k8s.io namespace, where the CRI keeps them.
"""

import re
import subprocess

from .common import read_file

NAMESPACE = "k8s.io"
CONFIG = "/etc/containerd/config.toml"
HOSTS_DIR = "/etc/containerd/certs.d"
SNAPSHOTTER = "native"  # as config.toml says (see the image's init.sh for why)
PULL_TIMEOUT = 120
DOCKER_HUB = "docker.io"


def normalize(image):
    """An image name as the CRI resolves it: docker.io and library/ for short names, :latest
    when it has neither tag nor digest."""
    first, _, rest = image.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        path = image if rest else f"library/{image}"
        image = f"{DOCKER_HUB}/{path}"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        image += ":latest"
    return image


def sandbox_image():
    """The pause image every pod's sandbox runs: config.toml's sandbox_image."""
    found = re.search(r'^\s*sandbox_image\s*=\s*"([^"]+)"', read_file(CONFIG, "") or "", re.M)
    return found[1] if found else None


def ctr(*args, timeout=PULL_TIMEOUT):
    return subprocess.run(
        ["ctr", "-n", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def images():
    """ref -> digest of the images containerd has in the k8s.io namespace ({} if it does not
    answer)."""
    try:
        listed = ctr("images", "ls", timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in listed.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            out[fields[0]] = fields[2]
    return out


def pull(image):
    """Pull (and unpack) the image. Returns (digest, None) or (None, containerd's message)."""
    ref = normalize(image)
    argv = ["images", "pull", "--hosts-dir", HOSTS_DIR, "--snapshotter", SNAPSHOTTER, ref]
    try:
        pulled = ctr(*argv)
    except OSError as e:
        return None, f"failed to run ctr: {e}"
    except subprocess.TimeoutExpired:
        return None, f"failed to pull and unpack image {ref!r}: no answer in {PULL_TIMEOUT}s"
    if pulled.returncode != 0:
        lines = [line for line in pulled.stderr.strip().splitlines() if line.strip()]
        message = lines[-1] if lines else f"ctr exited with {pulled.returncode}"
        message = re.sub(r"^ctr: ", "", message)
        return None, f'failed to pull and unpack image "{ref}": {message}'
    return images().get(ref), None
