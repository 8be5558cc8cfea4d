"""What the planner compares per host: the fields that, when changed, need an action."""

from __future__ import annotations

from cluster.model import Host
from cluster.records import host_record


def desired_record(host: Host, key: str) -> dict:
    """The Clusterfile's host in the shape of HostRecord.comparable()."""
    return host_record(host, lineage=key, version="", status="").comparable()
