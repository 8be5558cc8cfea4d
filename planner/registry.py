"""Registry rules: which hosts serve the image's registry, and which hosts need their runtime
pointed at it again.

New hosts need no action of their own: their init or join sets the registry up while the host
is prepared (the registry before kubeadm init, which pulls from it). Hosts that stay get:
- serve_registry: a registry host whose content (a rebuilt image), settings or credentials
  changed, or that starts serving (ha turned on); only the missing blobs travel. During an
  upgrade it comes first, with the registry program of the rootfs the host has, and every
  upgrade waits for it: kubeadm pulls the new version's images from it;
- stop_registry: a host that no longer serves (ha turned off, the registry dropped);
- configure_registry: a host whose hosts-file line, runtime configuration or credentials
  change (another serving master, another endpoint, a new password).
"""

from __future__ import annotations

from cluster import actions
from cluster import registry as registries
from cluster.actions import ConfigureRegistryDetails, Kind, ServeRegistryDetails, action_id
from cluster.model import Cluster
from cluster.records import State
from planner.graph import ActionGraph

# What must be on a host before its registry serves: the rootfs carrying bin/registry.
ROOTFS_STEPS = tuple(sorted(actions.kinds_where(lambda s: s.puts_rootfs)))
UPGRADES = (Kind.UPGRADE_MASTER, Kind.UPGRADE_WORKER, Kind.UPGRADE_BATCH)


def wanted(desired: Cluster, lineage: str) -> tuple[dict[str, str], dict[str, str]]:
    """(served digest by serving host, client digest by host) the Clusterfile asks for."""
    registry = desired.registry
    if registry is None:
        return {}, {}
    serving = registry.serving_hosts(desired.masters)
    auth = registry.auth_digest(lineage)  # PBKDF2: computed once
    served = registries.served_digest(registry, desired.image, auth)
    client = registries.client_digest(registry, serving, auth)
    return {ip: served for ip in serving}, {ip: client for ip in desired.hosts}


def joining(desired: Cluster, ip: str) -> str:
    """What an init or join action says about the registry on its host ("" none)."""
    registry = desired.registry
    if registry is None:
        return ""
    # As serving_hosts(), without listing every master for each of thousands of hosts.
    first = next(m for m, h in desired.hosts.items() if h.is_master)
    host = desired.hosts[ip]
    serves = registry.kind == registries.LOCAL and host.is_master and (registry.ha or ip == first)
    return f"{'serves' if serves else 'uses'} {registry.endpoint}"


def plan(graph: ActionGraph, desired: Cluster, state: State, kept: list[str]) -> None:
    served, client = wanted(desired, state.lineage)
    roles = {ip: desired.hosts[ip].roles for ip in kept}
    endpoint = desired.registry.endpoint if desired.registry else ""
    serve_ids = []
    planned = set(graph.ids())  # once: thousands of kept hosts look it up
    upgrades = sorted(i for i in planned if i.split(".", 1)[0] in UPGRADES)
    for ip in kept:
        record = state.hosts[ip]
        before = [action_id(k, ip) for k in ROOTFS_STEPS if action_id(k, ip) in planned]
        if served.get(ip) and record.registry_served != served[ip]:
            change = "content or settings changed" if record.registry_served else "starts serving"
            details = ServeRegistryDetails(endpoint, change)
            upgrading = record.registry_served and upgrades
            serve_id = graph.add(
                Kind.SERVE_REGISTRY, ip, roles[ip], [] if upgrading else before, details=details
            )
            serve_ids.append(serve_id)
            for upgrade in upgrades if upgrading else ():
                graph.depend(upgrade, serve_id)
        elif not served.get(ip) and record.registry_served:
            graph.add(Kind.STOP_REGISTRY, ip, roles[ip], before)
    for ip in kept:
        record = state.hosts[ip]
        if record.registry != client.get(ip, ""):
            graph.add(
                Kind.CONFIGURE_REGISTRY,
                ip,
                roles[ip],
                serve_ids,
                details=ConfigureRegistryDetails(endpoint or "(none)"),
            )
