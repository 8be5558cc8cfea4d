"""`sealer kubeconfig`: the admin kubeconfig, read from the bootstrap master."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import SealerError
from operations.common import SSHSettings, StateRef, load_cluster, locked_state, ssh_driver
from operations.events import Listener


@dataclass(frozen=True)
class KubeconfigRequest:
    clusterfile: str
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()


@dataclass(frozen=True)
class Kubeconfig:
    cluster: str
    source: str  # the master it was read from
    text: str  # a secret: written with mode 0600, never logged


def fetch_kubeconfig(request: KubeconfigRequest, listener: Listener) -> Kubeconfig:
    from executors.runtimes import runtime_for

    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "kubeconfig") as locked:
        state = locked.state
    if not state.bootstrap_master:
        raise SealerError(
            f"cluster {cluster.name!r} has no bootstrap master in the state; "
            f"run `sealer apply` first"
        )
    command = runtime_for(state.runtime).admin_kubeconfig_command
    driver = ssh_driver(cluster, state, request.ssh, pin_keys=True)
    try:
        text = driver.host(state.bootstrap_master).run(command).stdout
    finally:
        driver.close()
    return Kubeconfig(cluster.name, state.bootstrap_master, text)
