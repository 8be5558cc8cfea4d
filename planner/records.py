"""What the planner compares per host: the fields that, when changed, need an action."""

from __future__ import annotations

from cluster.digests import env_digest
from cluster.model import Host
from cluster.records import host_record


class EnvDigests:
    """env_digest, once per distinct env: the hosts of a group share theirs, and a plan of
    thousands of hosts would otherwise hash each one."""

    def __init__(self):
        self._known: dict[tuple, str] = {}

    def __call__(self, env: dict[str, str], key: str) -> str:
        identity = (key, *sorted(env.items()))
        if identity not in self._known:
            self._known[identity] = env_digest(env, key)
        return self._known[identity]


def desired_record(host: Host, key: str, digests=env_digest) -> dict:
    """The Clusterfile's host in the shape of HostRecord.comparable()."""
    return host_record(host, lineage=key, version="", status="", digest_of=digests).comparable()
