"""What the operations share: where the state is, how to reach hosts, the locked read."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cluster import clusterfile
from cluster.model import Cluster
from cluster.records import State
from operations.events import Listener
from state.backend import Backend
from state.location import backend_for


@dataclass(frozen=True)
class StateRef:
    """Which state: a file (--state), a PostgreSQL URL (--backend), or the default file."""

    path: str | None = None
    backend_url: str | None = None
    lock_timeout: float = 0.0  # seconds to wait for the lock
    backend: Backend | None = None  # an open backend instead (embedding, tests)


@dataclass(frozen=True)
class SSHSettings:
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    retries: int = 2  # more attempts after a failed connection
    # How hosts are reached: (hosts, timeouts, pinned keys) -> a driver. None: OpenSSH through
    # Fabric (executors.driver.Driver); tests give a recording double.
    connect: Callable | None = None


@dataclass(frozen=True)
class Locked:
    """A state read under the lock: the backend, the document as read, its typed form."""

    backend: Backend
    doc: dict
    state: State


def load_cluster(path: str, listener: Listener) -> Cluster:
    cluster, warnings = clusterfile.load(path)
    for warning in warnings:
        listener.warning(warning)
    return cluster


def open_backend(ref: StateRef, cluster_name: str) -> Backend:
    if ref.backend is not None:
        return ref.backend
    return backend_for(cluster_name, ref.path, ref.backend_url)


@contextlib.contextmanager
def locked_state(ref: StateRef, cluster_name: str, operation: str) -> Iterator[Locked]:
    """The backend locked for this operation, and the state as read under the lock."""
    backend = open_backend(ref, cluster_name)
    with backend.lock(operation, ref.lock_timeout):
        doc = backend.read(cluster_name)
        yield Locked(backend, doc, State.from_json(doc, backend.describe()))


def write_state(locked: Locked, new: State) -> bool:
    """Store new if its content differs from what was read; True if written."""
    # both sides in the typed form's JSON, so fields an older file lacks are no change
    return locked.backend.write(new.to_json(), locked.state.to_json())


def ssh_driver(cluster: Cluster, state: State, ssh: SSHSettings, pin_keys: bool = False):
    """Connections to the Clusterfile's hosts and to recorded hosts it no longer lists.

    pin_keys: refuse a host whose key differs from the one the state recorded at first contact,
    before logging in (a refresh reports such a host as drift).
    """
    from executors.driver import Driver, Timeouts  # late: commands that stay local skip SSH

    hosts = {ip: host.ssh for ip, host in cluster.hosts.items()}
    for ip in state.hosts:  # hosts being removed: the cluster's SSH settings
        hosts.setdefault(ip, cluster.ssh)
    timeouts = Timeouts(
        connect=ssh.connect_timeout, command=ssh.command_timeout, retries=max(0, ssh.retries)
    )
    pinned = {ip: r.host_key for ip, r in state.hosts.items()} if pin_keys else {}
    return (ssh.connect or Driver)(hosts, timeouts, pinned)
