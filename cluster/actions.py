"""Every kind of action a plan holds, in one place: its typed details, what it changes, whether
it drains or prepares its host, whether it is cluster-wide, how a plan explains it, and how
action ids are built and read.

Adding a kind: one `Kind` member, one details class (or an existing one), one `KindSpec` in
SPECS, one step in executors/steps/, one rendering in views/text.py (FIELDS); the test
tests/test_action_kinds.py fails until all of them exist. See docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    """An action's kind; its value is the name plans and states use."""

    INIT_CLUSTER = "init_cluster"
    JOIN_MASTER = "join_master"
    JOIN_WORKER = "join_worker"
    DELETE_MASTER = "delete_master"
    DELETE_WORKER = "delete_worker"
    RESET_CLUSTER = "reset_cluster"
    UPGRADE_MASTER = "upgrade_master"
    UPGRADE_WORKER = "upgrade_worker"
    UPGRADE_BATCH = "upgrade_batch"
    RECONFIGURE_MASTER = "reconfigure_master"
    UPDATE_HOST = "update_host"
    UPDATE_ENDPOINT = "update_endpoint"
    SYNC_ROOTFS = "sync_rootfs"
    SERVE_REGISTRY = "serve_registry"
    STOP_REGISTRY = "stop_registry"
    CONFIGURE_REGISTRY = "configure_registry"
    LAUNCH_APPS = "launch_apps"
    LAUNCH_APP = "launch_app"
    REMOVE_APP = "remove_app"

    __str__ = str.__str__  # "join_worker", in messages and f-strings alike
    __format__ = str.__format__


# ---- typed details ----


@functools.cache
def _layout(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(field name, JSON key, left out while empty) of a details class, in order."""
    return tuple(
        (f.name, f.metadata.get("json", f.name), bool(f.metadata.get("omit")))
        for f in dataclasses.fields(cls)
    )


@dataclass(frozen=True, eq=False)
class Details(Mapping):
    """An action's details, typed. They read as the mapping plans store (`to_json`), so a
    saved plan, `plan --json` and `details["to"]` keep their shape: the JSON names are the
    fields' names, or their metadata's `json` (`from` is a Python keyword); a field with
    metadata `omit` is left out while it is empty."""

    def to_json(self) -> dict:
        out = {}
        for name, key, omit in _layout(type(self)):
            value = getattr(self, name)
            if omit and not value:
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> Details:
        """From a plan's details; missing keys take their defaults, unknown ones are ignored."""
        known = {key: name for name, key, _ in _layout(cls)}
        values = {known[k]: v for k, v in data.items() if k in known}
        for f in dataclasses.fields(cls):
            if f.name in values and f.type == "tuple[str, ...]":
                values[f.name] = tuple(values[f.name] or ())
        return cls(**values)

    def __getitem__(self, key: str):
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json()!r})"


def _omit(**metadata) -> dict:
    return {"omit": True, **metadata}


@dataclass(frozen=True, eq=False)
class NoDetails(Details):
    pass


@dataclass(frozen=True, eq=False)
class NodeDetails(Details):
    """A node that joins (init_cluster, join_master, join_worker)."""

    version: str = ""
    role: str = ""
    labels: dict = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    registry: str = field(default="", metadata=_omit())  # "serves sea.hub:5000" / "uses ..."


@dataclass(frozen=True, eq=False)
class LeaveDetails(Details):
    """A node that leaves (delete_master, delete_worker)."""

    version: str = ""
    hands_bootstrap_to: str = field(default="", metadata=_omit())  # the bootstrap role's heir


@dataclass(frozen=True, eq=False)
class UpgradeDetails(Details):
    from_version: str = field(default="", metadata={"json": "from"})
    to_version: str = field(default="", metadata={"json": "to"})
    batch: int = field(default=0, metadata=_omit())  # workers: their batch, from 1


@dataclass(frozen=True, eq=False)
class BatchDetails(Details):
    """A barrier between two batches of worker upgrades."""

    batch: int = 0
    size: int = 0


@dataclass(frozen=True, eq=False)
class UpdateHostDetails(Details):
    changes: tuple[str, ...] = ()  # "labels.disk: + \"ssd\"", one line each


@dataclass(frozen=True, eq=False)
class EndpointDetails(Details):
    to_master: str = field(default="", metadata={"json": "to"})


@dataclass(frozen=True, eq=False)
class SyncRootfsDetails(Details):
    from_digest: str | None = field(default=None, metadata={"json": "from"})
    to_digest: str = field(default="", metadata={"json": "to"})
    configs: str = field(default="", metadata=_omit())  # "changed": the Configs changed
    image: str = field(default="", metadata=_omit())  # the name whose digest moved


@dataclass(frozen=True, eq=False)
class ServeRegistryDetails(Details):
    endpoint: str = ""
    reason: str = ""


@dataclass(frozen=True, eq=False)
class ConfigureRegistryDetails(Details):
    endpoint: str = ""


@dataclass(frozen=True, eq=False)
class LaunchDetails(Details):
    commands: tuple[str, ...] = ()
    digest: str = ""


@dataclass(frozen=True, eq=False)
class LaunchAppDetails(Details):
    app: str = ""
    image: str = ""
    commands: tuple[str, ...] = ()
    digest: str = ""
    change: str = ""  # "create" or "update"


@dataclass(frozen=True, eq=False)
class RemoveAppDetails(Details):
    app: str = ""
    commands: tuple[str, ...] = ()


# ---- what each kind is ----

ADD, CHANGE, DESTROY = "add", "change", "destroy"


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    details: type[Details]
    change: Callable[[Details], str | None]  # add / change / destroy; None: an inner step
    explain: Callable[[Details], str]  # why, in the plan: "# ID will be ... (WHY)"
    drains: bool = False  # drains its node first (kubectl drain)
    prepares_host: bool = False  # its host gets the rootfs (and init.sh) before it runs
    joins: bool = False  # a node joins through the bootstrap master's endpoint
    cluster_wide: bool = False  # for the whole cluster, on the bootstrap master: no host's own
    puts_rootfs: bool = False  # leaves a new rootfs on its host (a registry serves from it)


def _always(change: str | None) -> Callable[[Details], str | None]:
    return lambda details: change


def _said(text: str) -> Callable[[Details], str]:
    return lambda details: text


def _upgrade_reason(d: UpgradeDetails) -> str:
    batch = f", batch {d.batch}" if d.batch else ""
    return f"because {d.from_version} -> {d.to_version}{batch}"


def _delete_master_reason(d: LeaveDetails) -> str:
    hand = f"; the bootstrap role moves to {d.hands_bootstrap_to}" if d.hands_bootstrap_to else ""
    return f"leaves etcd and the cluster, host cleaned{hand}"


def _launch_app_reason(d: LaunchAppDetails) -> str:
    if d.change == "create":
        return "launches the app on the bootstrap master"
    return "the app's files, commands or env changed: launches it again"


def _remove_app_reason(d: RemoveAppDetails) -> str:
    if d.commands:
        return "no longer launched: its delete commands run, then it is forgotten"
    return "no longer launched: forgotten (its objects stay in the cluster)"


def _serve_registry_reason(d: ServeRegistryDetails) -> str:
    return f"the registry {d.reason or 'changed'}: sends the missing blobs, restarts it"


SPECS: dict[Kind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            Kind.INIT_CLUSTER, NodeDetails, _always(ADD),
            _said("the first master: initialises the control plane"), prepares_host=True,
        ),
        KindSpec(
            Kind.JOIN_MASTER, NodeDetails, _always(ADD), _said("joins the control plane"),
            prepares_host=True, joins=True,
        ),
        KindSpec(
            Kind.JOIN_WORKER, NodeDetails, _always(ADD), _said(""),
            prepares_host=True, joins=True,
        ),
        KindSpec(
            Kind.DELETE_MASTER, LeaveDetails, _always(DESTROY), _delete_master_reason,
            drains=True,
        ),
        KindSpec(
            Kind.DELETE_WORKER, LeaveDetails, _always(DESTROY),
            _said("drained, deleted from the cluster, host cleaned"), drains=True,
        ),
        KindSpec(Kind.RESET_CLUSTER, NoDetails, _always(DESTROY), _said("reset and cleaned")),
        KindSpec(
            Kind.UPGRADE_MASTER, UpgradeDetails, _always(CHANGE), _upgrade_reason,
            drains=True, prepares_host=True, puts_rootfs=True,
        ),
        KindSpec(
            Kind.UPGRADE_WORKER, UpgradeDetails, _always(CHANGE), _upgrade_reason,
            drains=True, prepares_host=True, puts_rootfs=True,
        ),
        KindSpec(
            Kind.UPGRADE_BATCH, BatchDetails, _always(None), _said(""), cluster_wide=True,
        ),
        KindSpec(
            Kind.RECONFIGURE_MASTER, NoDetails, _always(CHANGE),
            _said("the kubeadm configuration changed: apiserver certificate and manifest made "
                  "again"),
        ),
        KindSpec(
            Kind.UPDATE_HOST, UpdateHostDetails, _always(CHANGE),
            _said("because its settings changed"),
        ),
        KindSpec(
            Kind.UPDATE_ENDPOINT, EndpointDetails, _always(CHANGE),
            _said("the control-plane endpoint moves to a master that stays"),
        ),
        KindSpec(
            Kind.SYNC_ROOTFS, SyncRootfsDetails, _always(CHANGE),
            _said("the rootfs changed at the same version (image content or Configs): "
                  "copies it"),
            puts_rootfs=True,
        ),
        KindSpec(
            Kind.SERVE_REGISTRY, ServeRegistryDetails, _always(CHANGE), _serve_registry_reason,
        ),
        KindSpec(
            Kind.STOP_REGISTRY, NoDetails, _always(CHANGE),
            _said("no longer serves the registry: stopped, its storage removed"),
        ),
        KindSpec(
            Kind.CONFIGURE_REGISTRY, ConfigureRegistryDetails, _always(CHANGE),
            _said("the registry's address, hosts or credentials changed: the runtime points "
                  "at it again"),
        ),
        KindSpec(
            Kind.LAUNCH_APPS, LaunchDetails, _always(CHANGE),
            _said("runs the launch commands on the bootstrap master"), cluster_wide=True,
        ),
        KindSpec(
            Kind.LAUNCH_APP, LaunchAppDetails,
            lambda d: ADD if d.change == "create" else CHANGE, _launch_app_reason,
            cluster_wide=True,
        ),
        KindSpec(
            Kind.REMOVE_APP, RemoveAppDetails, _always(DESTROY), _remove_app_reason,
            cluster_wide=True,
        ),
    )
}  # fmt: skip


def spec(kind: Kind | str) -> KindSpec:
    return SPECS[Kind(kind)]


def kinds_where(predicate: Callable[[KindSpec], bool]) -> frozenset[Kind]:
    return frozenset(k for k, s in SPECS.items() if predicate(s))


# Kinds that add or change something (not a leave, a reset or a barrier): what the cluster's
# launch commands and apps wait for.
BUILDING = kinds_where(lambda s: s.change(s.details()) in (ADD, CHANGE))


def details_of(kind: Kind | str, data: Mapping | None) -> Details:
    """Typed details for `kind` from a mapping (a saved plan's), or as they are."""
    if isinstance(data, Details):
        return data
    return spec(kind).details.from_json(data or {})


# ---- action ids: KIND.NAME, NAME a host's address, an app's name or a batch's number ----


def action_id(kind: Kind | str, name: object) -> str:
    value = kind.value if isinstance(kind, Kind) else Kind(kind).value  # plans call it a lot
    return f"{value}.{name}"


def parse_id(identifier: str) -> tuple[Kind, str]:
    """(kind, name) of an action id; a ValueError for an id of no known kind."""
    kind, _, name = identifier.partition(".")
    return Kind(kind), name


def kind_of(identifier: str) -> Kind:
    return parse_id(identifier)[0]
