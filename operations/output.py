"""`sealer output`: what scripts need to know about a running cluster, read from the state.

Stable keys (adding one is fine, renaming one breaks scripts): cluster, api_endpoint,
bootstrap_master, masters, workers, kubernetes_version, runtime, image, registry,
kubeconfig. Nothing here contacts a host, and no secret is in the state to leak.
"""

from __future__ import annotations

import ipaddress

from operations.common import locked_state
from operations.events import Listener
from operations.state_sync import StateRequest, cluster_name

# Where each distribution keeps the admin kubeconfig on its masters.
KUBECONFIG_PATHS = {
    "kubernetes": "/etc/kubernetes/admin.conf",
    "k3s": "/etc/rancher/k3s/k3s.yaml",
    "k0s": "/var/lib/k0s/pki/admin.conf",
}
DEFAULT_API_PORT = 6443


def outputs(request: StateRequest, listener: Listener) -> dict:
    name = cluster_name(request, listener)
    with locked_state(request.state, name, "output") as locked:
        state = locked.state
    control_plane = state.control_plane or {}
    image = state.image or {}
    runtime = image.get("runtime") or state.runtime or ""
    endpoint = control_plane.get("endpoint") or ""
    if endpoint and ":" not in endpoint.rsplit("]", 1)[-1]:
        endpoint = f"{endpoint}:{DEFAULT_API_PORT}"
    versions = sorted({r.version for r in state.hosts.values() if r.version})
    serving = _sorted(ip for ip, r in state.hosts.items() if r.registry_served)
    return {
        "cluster": state.cluster,
        "serial": state.serial,
        "api_endpoint": f"https://{endpoint}" if endpoint else None,
        "bootstrap_master": state.bootstrap_master,
        "masters": _sorted(ip for ip, r in state.hosts.items() if r.is_master),
        "workers": _sorted(ip for ip, r in state.hosts.items() if not r.is_master),
        "kubernetes_version": image.get("version") or (versions[-1] if versions else None),
        "host_versions": versions,  # more than one: an upgrade is under way (or --target)
        "runtime": runtime or None,
        "image": image.get("name"),
        "registry": {"served_by": serving} if serving else None,
        "kubeconfig": {
            "host": state.bootstrap_master,
            "path": KUBECONFIG_PATHS.get(runtime),
            "fetch": "sealer kubeconfig -o FILE",
        }
        if state.bootstrap_master
        else None,
    }


def _sorted(ips) -> list[str]:
    """By address, not by the order hosts happened to finish joining."""
    return sorted(ips, key=ipaddress.ip_address)
