"""What the operations share: where the state is, how to reach hosts, the locked read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from cluster import apps, clusterfile
from cluster import image as images
from cluster import registry as registries
from cluster.errors import SealerError
from cluster.model import Cluster
from cluster.records import State
from operations.events import Listener
from operations.settings import SSHSettings, StateRef
from state.backend import Backend
from state.location import backend_for


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


def on_recorded_cluster(cluster: Cluster, state: State) -> Cluster:
    """An application image installs its apps on the running cluster, which keeps the cluster
    image and control plane its state records (hosts still join with that image)."""
    if not cluster.image.is_application:
        return cluster
    app_image = cluster.image
    where = f"{cluster.source}: spec.image {app_image.name}"
    if not state.image:
        raise SealerError(
            f"{where} is an application image: it installs apps on a running cluster, and "
            f"{cluster.name} has none yet; create it with a cluster image first"
        )
    recorded = state.image
    try:
        image = images.resolve(recorded["name"], Path(cluster.source).resolve().parent)
    except SealerError as e:
        raise SealerError(
            f"{where}: the cluster's own image, {recorded['name']}, is needed too: {e}"
        ) from None
    if image.digest != recorded.get("digest"):
        raise SealerError(
            f"{where}: the cluster image {recorded['name']} is now {image.digest[:19]}, not the "
            f"{str(recorded.get('digest'))[:19]} the cluster runs; load that one again"
        )
    constraint = app_image.labels.get(apps.KUBE_VERSION_LABEL)
    problem = apps.kube_version_problem(constraint, image.version) if constraint else ""
    if problem:
        raise SealerError(f"{where}: {problem}; refused")
    return replace(
        cluster,
        image=image,
        control_plane=dict(state.control_plane or {}),
        registry=registries.from_spec(cluster.registry_spec, image),  # the cluster image's
        app_image=app_image,
    )


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
    hosts = {ip: host.ssh for ip, host in cluster.hosts.items()}
    for ip in state.hosts:  # hosts being removed: the cluster's SSH settings
        hosts.setdefault(ip, cluster.ssh)
    pinned = {ip: r.host_key for ip, r in state.hosts.items()} if pin_keys else {}
    # only pinned hosts can share connections: a shared one is opened with the pin
    lineage = state.lineage if pin_keys and state.hosts else ""
    jump_pins = dict(state.jump_keys) if pin_keys else {}
    return connect(hosts, ssh, pinned, lineage=lineage, jump_pins=jump_pins)


def connect(
    hosts: dict,
    ssh: SSHSettings,
    pinned: dict[str, str] | None = None,
    lineage: str = "",
    jump_pins: dict[str, str] | None = None,
):
    """A driver for these hosts (ip -> model SSH, completed by the user's ~/.ssh/config) with
    the settings' timeouts and retries; with a lineage and ssh.persist, reads share
    connections across runs of that state. jump_pins: the bastions' keys (ADDRESS:PORT)."""
    from executors.driver import Driver, Timeouts  # late: commands that stay local skip SSH
    from executors.jumps import Gateways
    from operations import ssh_config

    timeouts = Timeouts(
        connect=ssh.connect_timeout,
        command=ssh.command_timeout,
        retries=max(0, ssh.retries),
        retried=ssh.retried,
    )
    if ssh.connect:
        return ssh.connect(hosts, timeouts, pinned or {})
    hosts = ssh_config.resolve(hosts)
    reuse = None
    if lineage and ssh.persist > 0:
        from executors import connections

        folder = connections.folder_for(images.sealer_home())
        reuse = connections.Reuse(folder, ssh.persist, lineage)
    gateways = Gateways(timeouts, jump_pins)
    return Driver(hosts, timeouts, pinned or {}, reuse=reuse, gateways=gateways)
