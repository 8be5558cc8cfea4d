"""`sealer connections ls|close`: the SSH connections kept open across runs for reads."""

from __future__ import annotations

from cluster import image as images
from executors import connections


def listing() -> list[dict]:
    """Every open kept connection: whom it reaches, the pinned key, the state (lineage), pid."""
    folder = connections.folder_for(images.sealer_home())
    return [{**shared.info, "pid": shared.pid} for shared in connections.listing(folder)]


def close(hosts: list[str]) -> int:
    """Close the kept connections to these hosts (all of them without hosts); how many."""
    folder = connections.folder_for(images.sealer_home())
    closed = 0
    for shared in connections.listing(folder):
        if not hosts or shared.info.get("host") in hosts:
            connections.close(folder, shared)
            closed += 1
    return closed
