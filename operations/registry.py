"""`sealer registry prune`: drop from the cluster's registry the container images the current
ClusterImage no longer carries (a rebuilt image adds blobs; nothing is removed until asked)."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import SealerError
from operations.common import SSHSettings, StateRef, load_cluster, locked_state, ssh_driver
from operations.events import Listener


@dataclass(frozen=True)
class PruneRequest:
    clusterfile: str
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()


@dataclass(frozen=True)
class PruneResult:
    cluster: str
    blobs: dict  # serving host -> (blob files before, after)


def prune(request: PruneRequest, listener: Listener) -> PruneResult:
    from executors import distribute
    from executors import registry as registry_remote

    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "registry prune") as locked:
        state = locked.state
        serving = [ip for ip, record in state.hosts.items() if record.registry_served]
        if not serving or cluster.registry is None:
            raise SealerError(f"cluster {cluster.name!r} serves no registry; nothing to prune")
        if (state.image or {}).get("digest") != cluster.image.digest:
            raise SealerError(
                f"the cluster runs another image than {cluster.image.name} "
                f"({cluster.image.digest[:19]}); apply it first, then prune what it dropped"
            )
        keep = _kept_images(cluster, state)
        data_root = (state.control_plane or {}).get("data_root") or distribute.DATA_ROOT
        rootfs = distribute.rootfs_dir(cluster.name, data_root)
        driver = ssh_driver(cluster, state, request.ssh, pin_keys=True)
        blobs = {}
        try:
            for ip in serving:
                blobs[ip] = registry_remote.prune(
                    driver.host(ip), cluster.registry, keep, rootfs, ip
                )
                listener.note(f"{ip}: {blobs[ip][0]} -> {blobs[ip][1]} blob files")
        finally:
            driver.close()
    return PruneResult(cluster.name, blobs)


def _kept_images(cluster, state) -> list[str]:
    """The cluster image's container images and those of the application images whose apps
    run on the cluster (each must still be in the local store: its list says what to keep)."""
    from cluster import image as images

    names = [c["name"] for c in cluster.image.container_images]
    for app_image in sorted({a.get("image", "") for a in state.apps.values()} - {""}):
        if app_image == cluster.image.name:
            continue
        try:
            found = images.from_store(app_image)
        except SealerError as e:
            raise SealerError(
                f"app image {app_image} (its apps run on the cluster) is needed to know which "
                f"container images to keep: {e}"
            ) from None
        names += [c["name"] for c in found.container_images]
    return names
