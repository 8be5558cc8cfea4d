"""`sealer cert --alt-names`: more names in the API server's certificate on every master."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cluster.errors import InputError, SealerError
from operations.common import (
    SSHSettings,
    StateRef,
    load_cluster,
    locked_state,
    ssh_driver,
    write_state,
)
from operations.events import Listener


@dataclass(frozen=True)
class CertRequest:
    clusterfile: str
    alt_names: tuple[str, ...]
    state: StateRef = StateRef()
    ssh: SSHSettings = SSHSettings()


@dataclass(frozen=True)
class CertResult:
    cluster: str
    masters: tuple[str, ...]  # in the order they were renewed
    alt_names: tuple[str, ...]  # every name sealer added so far


def add_alt_names(request: CertRequest, listener: Listener) -> CertResult:
    from executors import certs
    from executors.runtimes.base import ImageInputs
    from executors.runtimes.kubernetes import Kubeadm

    names = [n.strip() for n in request.alt_names if n.strip()]
    bad = [certs.san_problem(n) for n in names if certs.san_problem(n)]
    if not names or bad:
        raise InputError(["--alt-names: " + ("; ".join(bad) or "give at least one name")])
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "cert") as locked:
        state = locked.state
        if state.runtime != "kubernetes" or not state.bootstrap_master:
            raise SealerError(
                f"sealer cert: cluster {cluster.name!r} is not a running kubernetes (kubeadm) "
                f"cluster; k3s and k0s take extra names in their own configs (tls-san, "
                f"spec.api.sans), which sealer cert does not edit yet"
            )
        fixed = dict(state.control_plane or {})
        added = [n for n in (fixed.get("cert_sans") or "").split(",") if n]
        added = list(dict.fromkeys([*added, *names]))
        image = cluster.image
        repository = cluster.registry.endpoint if cluster.registry else ""
        inputs = ImageInputs(image.rootfs, cluster.kube_documents, image.version, (), repository)
        runtime = Kubeadm(image=inputs)
        masters = [
            state.bootstrap_master,
            *(m for m in state.masters if m != state.bootstrap_master),
        ]
        driver = ssh_driver(cluster, state, request.ssh, pin_keys=True)
        try:
            certs.add_apiserver_sans(
                driver,
                runtime.documents,
                version=cluster.image.version,
                masters=masters,
                sans=added,
                on_master=lambda ip: listener.note(f"{ip}: apiserver certificate renewed"),
            )
        finally:
            driver.close()
        fixed["cert_sans"] = ",".join(added)
        write_state(locked, dataclasses.replace(state, control_plane=fixed))
    return CertResult(cluster.name, tuple(masters), tuple(added))
