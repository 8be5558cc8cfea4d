"""Hosts and a multi-arch image: every host's architecture must be one the image has.

Checked after the refresh of plan and apply, before any host is touched, for images that name
their platforms (OCI images): the refresh read the recorded hosts' machines; the hosts it did
not read (those joining) are asked `uname -m`, in parallel. A host that does not answer is left
to the refresh and to its own preparation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cluster import image as images
from cluster.errors import SealerError
from cluster.model import Cluster
from cluster.records import State
from operations.common import SSHSettings, ssh_driver


def check(
    cluster: Cluster,
    state: State,
    ssh: SSHSettings,
    enabled: bool = True,
    known: dict[str, str] | None = None,
) -> None:
    """known: host -> machine, as the refresh read them."""
    image = cluster.image
    if not enabled or image is None or not image.platforms or not cluster.hosts:
        return
    machines = {ip: m for ip, m in (known or {}).items() if ip in cluster.hosts}
    # recorded ones: the refresh's word; joining ones: the precheck's read, else asked here
    asked = sorted(set(cluster.hosts) - set(state.hosts) - set(machines))
    machines.update(_read_machines(cluster, state, ssh, asked) if asked else {})
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


def _read_machines(cluster: Cluster, state: State, ssh: SSHSettings, ips: list[str]) -> dict:
    from executors import facts
    from executors.driver import HostError

    driver = ssh_driver(cluster, state, ssh, pin_keys=True)

    def machine(ip: str) -> str:
        try:
            return facts.read(driver.host(ip), facts.machine())
        except HostError:
            return ""  # unread: the refresh and the host's preparation say why

    try:
        with ThreadPoolExecutor(min(len(ips), 64)) as pool:
            return dict(zip(ips, pool.map(machine, ips), strict=True))
    finally:
        driver.close()
