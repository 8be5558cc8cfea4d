"""`sealer show` and `sealer validate`: read a state, a saved plan or a Clusterfile."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.model import Cluster, Plan
from cluster.records import State
from operations.common import load_cluster, locked_state
from operations.events import Listener
from operations.state_sync import StateRequest, cluster_name
from state import planfile


@dataclass(frozen=True)
class Shown:
    where: str
    doc: dict  # as stored (journal folded in), for --json
    state: State


def show_state(request: StateRequest, listener: Listener) -> Shown:
    """The state of --cluster, of the cluster a --state file names, or of the Clusterfile's."""
    with locked_state(request.state, cluster_name(request, listener), "show") as locked:
        return Shown(locked.backend.describe(), locked.doc, locked.state)


def saved_plan(path: str) -> tuple[dict, Plan]:
    """A plan saved by `sealer plan --out`: as saved (JSON) and typed."""
    document, _ = planfile.load(path)
    return document, Plan.from_json(document)


def validate(clusterfile: str, listener: Listener) -> Cluster:
    """The Clusterfile and its ClusterImage, checked (InputError lists every problem)."""
    return load_cluster(clusterfile, listener)


def is_plan_file(path: str) -> bool:
    """Whether path holds a saved plan (else it is taken for a Clusterfile)."""
    return planfile.is_plan_file(path)
