"""Hosts and a multi-arch image: every host's architecture must be one the image has.

Checked after the refresh of plan and apply, before any host is touched, for images that name
their platforms (OCI images), with the machines already read: the recorded hosts' by the
refresh, the joining hosts' by the host checks (operations/prechecks.py). A host that did not
answer is left to the refresh and to its own preparation.
"""

from __future__ import annotations

from cluster import image as images
from cluster.errors import SealerError
from cluster.model import Cluster


def check(cluster: Cluster, known: dict[str, str]) -> None:
    """known: host -> machine (uname -m), as read."""
    image = cluster.image
    if image is None or not image.platforms:
        return
    machines = {ip: m for ip, m in known.items() if ip in cluster.hosts}
    problems = [
        f"{ip}: {images.platform_problem(image, found)}"
        for ip, found in sorted(machines.items())
        if images.platform_problem(image, found)
    ]
    if problems:
        raise SealerError(
            f"cannot plan: {image.name} cannot run on "
            f"{'these hosts' if len(problems) > 1 else 'this host'}: " + "; ".join(problems)
        )
