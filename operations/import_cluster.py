"""`sealer import`: adopt a running cluster into the state, touching no host."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cluster.digests import configs_digest
from cluster.errors import SealerError
from cluster.records import State, host_record
from operations.common import StateRef, load_cluster, locked_state, write_state
from operations.events import Listener


@dataclass(frozen=True)
class ImportRequest:
    clusterfile: str
    state: StateRef = StateRef()


@dataclass(frozen=True)
class ImportResult:
    cluster: str
    hosts: int
    where: str


def import_cluster(request: ImportRequest, listener: Listener) -> ImportResult:
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "import") as locked:
        current = locked.state
        if not current.is_empty:
            raise SealerError(
                f"{locked.backend.describe()}: a state with {len(current.hosts)} host(s) "
                f"already exists for cluster {cluster.name!r}; import only adopts a "
                f"cluster that has no state"
            )
        fresh = State.new(cluster.name)
        lineage = current.lineage if current.serial else fresh.lineage  # an emptied state
        version = cluster.image.version
        adopted = replace(
            fresh,
            lineage=lineage,
            serial=current.serial,
            image=cluster.image.record(),
            bootstrap_master=cluster.masters[0],
            configs_digest=configs_digest(cluster),
            hosts={
                ip: host_record(host, lineage=lineage, version=version, status="imported")
                for ip, host in cluster.hosts.items()
            },
        )
        write_state(locked, adopted)
    return ImportResult(cluster.name, len(cluster.hosts), locked.backend.describe())
