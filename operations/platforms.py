"""Hosts and a multi-arch image: every host's architecture must be one the image has.

Checked after the refresh of plan and apply, before any host is touched: one `uname -m` per
host of the Clusterfile, in parallel, only for images that name their platforms (OCI images).
A host that does not answer is left to the refresh and to its own preparation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cluster import image as images
from cluster.errors import SealerError
from cluster.model import Cluster
from cluster.records import State
from operations.common import SSHSettings, ssh_driver


def check(cluster: Cluster, state: State, ssh: SSHSettings, enabled: bool = True) -> None:
    image = cluster.image
    if not enabled or image is None or not image.platforms or not cluster.hosts:
        return
    from executors import facts
    from executors.driver import HostError

    driver = ssh_driver(cluster, state, ssh, pin_keys=True)

    def machine(ip: str) -> str:
        try:
            return facts.read(driver.host(ip), facts.machine())
        except HostError:
            return ""  # unread: the refresh and the host's preparation say why

    try:
        ips = sorted(cluster.hosts)
        with ThreadPoolExecutor(min(len(ips), 64)) as pool:
            machines = dict(zip(ips, pool.map(machine, ips), strict=True))
    finally:
        driver.close()
    problems = [
        f"{ip}: {images.platform_problem(image, found)}"
        for ip, found in machines.items()
        if images.platform_problem(image, found)
    ]
    if problems:
        raise SealerError(
            f"cannot plan: {image.name} cannot run on "
            f"{'these hosts' if len(problems) > 1 else 'this host'}: " + "; ".join(problems)
        )
