"""`sealer etcd backup | restore`: snapshots of a kubeadm cluster's etcd."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import SealerError
from operations.common import SSHSettings, StateRef, load_cluster, locked_state, ssh_driver
from operations.events import Listener


@dataclass(frozen=True)
class EtcdRequest:
    clusterfile: str
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()


@dataclass(frozen=True)
class Snapshot:
    cluster: str
    source: str  # the member it was taken from
    data: bytes  # written with mode 0600 by the CLI: it holds every secret of the cluster


def _masters(request: EtcdRequest, listener: Listener, operation: str):
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, operation) as locked:
        state = locked.state
    if state.runtime != "kubernetes" or not state.masters:
        raise SealerError(
            f"sealer etcd: cluster {cluster.name!r} is not a running kubernetes (kubeadm) "
            f"cluster; k3s (`k3s etcd-snapshot`) and k0s (`k0s backup`) are not done yet"
        )
    masters = [m for m in [state.bootstrap_master, *state.masters] if m]
    return cluster, state, list(dict.fromkeys(masters))


def backup(request: EtcdRequest, listener: Listener) -> Snapshot:
    from executors import etcd_backup

    cluster, state, masters = _masters(request, listener, "etcd backup")
    driver = ssh_driver(cluster, state, request.ssh, pin_keys=True)
    try:
        source, data = etcd_backup.save(driver, masters)
    finally:
        driver.close()
    return Snapshot(cluster.name, source, data)


def restore(request: EtcdRequest, snapshot: bytes, listener: Listener) -> list[str]:
    """Every master's member rebuilt from the snapshot; returns the masters."""
    from executors import etcd_backup

    if len(snapshot) < 32:
        raise SealerError("etcd restore: the snapshot file is empty or truncated")
    cluster, state, masters = _masters(request, listener, "etcd restore")
    names = {ip: state.hosts[ip].hostname or ip for ip in masters}
    driver = ssh_driver(cluster, state, request.ssh, pin_keys=True)
    try:
        etcd_backup.restore(driver, names, snapshot)
    finally:
        driver.close()
    return masters
