"""The recorded state as typed data: what sealer knows it did, host by host.

`State.from_json` is the one place that checks a state document's format; every layer above
reads these types, never the raw JSON. The JSON written by `to_json` keeps the on-disk format of
earlier releases (format_version 1), so old state files load as they are.

Journal patches (what one finished action changes) are plain JSON too: backends store and
replay them on documents, `State.patched` applies them to the typed state.
"""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from dataclasses import dataclass, field, replace

from cluster.digests import env_digest
from cluster.errors import SealerError
from cluster.model import MASTER, RUNTIMES, Host

FORMAT_VERSION = 1
DEFAULT_RUNTIME = "kubernetes"  # states written before the runtime was recorded
PATCH_FIELDS = (
    "image",
    "bootstrap_master",
    "launch_digest",
    "configs_digest",
    "control_plane",
    "apps",
    "jump_keys",
)


# a bastion's pin: ADDRESS:PORT ([IPv6]:PORT) -> OpenSSH's SHA256 fingerprint
JUMP_NAME = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):[0-9]{1,5}\Z")
PIN = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}\Z")


class StateFormatError(SealerError):
    pass


@dataclass(frozen=True)
class HostRecord:
    """One host as sealer last left it."""

    roles: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    env_digest: str = ""  # keyed by the lineage: a change shows, the values never do
    version: str = ""
    status: str = ""
    hostname: str = ""
    host_key: str = ""  # pinned at first contact
    host_aliases: tuple[str, ...] = ()  # spec.hostAliases lines in its hosts file: "IP NAME..."
    registry: str = ""  # digest of how its runtime reaches the registry (cluster.registry)
    registry_served: str = ""  # digest of what its registry serves; "": it serves none

    @property
    def is_master(self) -> bool:
        return MASTER in self.roles

    def comparable(self) -> dict:
        """The fields whose change needs an update_host action."""
        return {
            "roles": sorted(self.roles),
            "labels": dict(self.labels),
            "taints": sorted(self.taints),
            "env_digest": self.env_digest,
            "host_aliases": sorted(self.host_aliases),
        }

    def to_json(self) -> dict:
        optional = {
            "host_aliases": list(self.host_aliases),
            "registry": self.registry,
            "registry_served": self.registry_served,
        }
        return {
            "roles": list(self.roles),
            "labels": dict(self.labels),
            "taints": list(self.taints),
            "env_digest": self.env_digest,
            "version": self.version,
            "status": self.status,
            "hostname": self.hostname,
            "host_key": self.host_key,
            **{k: v for k, v in optional.items() if v},  # only when set: old states round-trip
        }

    @classmethod
    def from_json(cls, data: dict) -> HostRecord:
        return cls(
            roles=tuple(data.get("roles") or ()),
            labels=dict(data.get("labels") or {}),
            taints=tuple(data.get("taints") or ()),
            env_digest=data.get("env_digest") or "",
            version=data.get("version") or "",
            status=data.get("status") or "",
            hostname=data.get("hostname") or "",
            host_key=data.get("host_key") or "",
            host_aliases=tuple(data.get("host_aliases") or ()),
            registry=data.get("registry") or "",
            registry_served=data.get("registry_served") or "",
        )

    def with_fields(self, **fields) -> HostRecord:
        """A copy with JSON-shaped fields changed (as an update_host patch carries them)."""
        return HostRecord.from_json({**self.to_json(), **fields})


def host_record(
    host: Host,
    *,
    lineage: str,
    version: str,
    status: str,
    hostname: str = "",
    host_key: str = "",
    digest_of=env_digest,
) -> HostRecord:
    """The record of a host from the Clusterfile: the one place a record is built. digest_of:
    how the env is digested (a planner of thousands of hosts passes a cached one)."""
    return HostRecord(
        roles=tuple(host.roles),
        labels=dict(host.labels),
        taints=tuple(host.taints),
        env_digest=digest_of(host.env, lineage),
        version=version,
        status=status,
        hostname=hostname,
        host_key=host_key,
        host_aliases=tuple(host.host_aliases),
    )


@dataclass(frozen=True)
class State:
    """A cluster's recorded state. serial 0: nothing stored yet."""

    cluster: str
    lineage: str
    serial: int = 0
    image: dict | None = None  # {name, digest, version, runtime}
    bootstrap_master: str | None = None
    hosts: dict[str, HostRecord] = field(default_factory=dict)  # by IP
    launch_digest: str | None = None
    configs_digest: str | None = None
    control_plane: dict | None = None  # what a running cluster cannot change (the endpoint...)
    apps: dict = field(default_factory=dict)  # launched apps: name -> {digest, image}
    # the bastions' host keys, pinned at first contact: ADDRESS:PORT -> fingerprint
    jump_keys: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""

    @classmethod
    def new(cls, cluster: str) -> State:
        now = now_utc()
        return cls(cluster=cluster, lineage=str(uuid.uuid4()), created_at=now, updated_at=now)

    @property
    def runtime(self) -> str:
        return (self.image or {}).get("runtime", DEFAULT_RUNTIME)

    @property
    def stored_lineage(self) -> str | None:
        """The lineage, once the state exists (a plan against nothing has no lineage)."""
        return self.lineage if self.serial else None

    @property
    def is_empty(self) -> bool:
        return not self.hosts and self.image is None

    @property
    def masters(self) -> list[str]:
        return [ip for ip, record in self.hosts.items() if record.is_master]

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "cluster": self.cluster,
            "image": self.image,
            "bootstrap_master": self.bootstrap_master,
            "hosts": {ip: record.to_json() for ip, record in self.hosts.items()},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "launch_digest": self.launch_digest,
            "configs_digest": self.configs_digest,
            "control_plane": self.control_plane,
            "apps": {name: dict(app) for name, app in self.apps.items()},
            **({"jump_keys": dict(self.jump_keys)} if self.jump_keys else {}),
        }

    @classmethod
    def from_json(cls, doc: dict, where: str = "state") -> State:
        check_document(doc, where)
        return cls(
            cluster=doc.get("cluster") or "",
            lineage=doc["lineage"],
            serial=doc["serial"],
            image=doc.get("image"),
            bootstrap_master=doc.get("bootstrap_master"),
            hosts={ip: HostRecord.from_json(r) for ip, r in doc["hosts"].items()},
            launch_digest=doc.get("launch_digest"),
            configs_digest=doc.get("configs_digest"),
            control_plane=doc.get("control_plane"),
            apps={name: dict(app) for name, app in (doc.get("apps") or {}).items()},
            jump_keys=dict(doc.get("jump_keys") or {}),
            created_at=doc.get("created_at") or "",
            updated_at=doc.get("updated_at") or "",
        )

    def with_hosts(self, hosts: dict[str, HostRecord]) -> State:
        return replace(self, hosts=hosts)

    def patched(self, patch: dict) -> State:
        """The state after one journal patch (see the constructors below)."""
        op = patch["op"]
        hosts = dict(self.hosts)
        if op == "set_host":
            hosts[patch["ip"]] = HostRecord.from_json(patch["record"])
        elif op == "update_host":
            if patch["ip"] in hosts:
                hosts[patch["ip"]] = hosts[patch["ip"]].with_fields(**patch["fields"])
        elif op == "delete_host":
            hosts.pop(patch["ip"], None)
        elif op == "set":
            return replace(self, **{patch["field"]: patch["value"]})
        else:
            raise ValueError(f"unknown state patch {op!r}")
        return replace(self, hosts=hosts)


def check_document(doc, where: str) -> None:
    """The one check of a state document's shape and format version."""
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("hosts"), dict)
        or not isinstance(doc.get("lineage"), str)
        or not isinstance(doc.get("serial"), int)
    ):
        raise StateFormatError(
            f"{where}: not a sealer state document (needs lineage, serial, hosts)"
        )
    if doc.get("format_version") != FORMAT_VERSION:
        raise StateFormatError(
            f"{where}: state format_version {doc.get('format_version')!r} is not "
            f"supported (this sealer reads {FORMAT_VERSION})"
        )
    problem = _shape_problem(doc)
    if problem:
        raise StateFormatError(f"{where}: not a valid sealer state: {problem}")


def _is_strings(value, mapping: bool = False) -> bool:
    if mapping:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _shape_problem(doc: dict) -> str:
    """The first field of a state document with the wrong shape, or ""."""
    for name in ("cluster", "bootstrap_master", "launch_digest", "configs_digest"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            return f"{name} must be a string"
    for name in ("image", "control_plane", "jump_keys"):
        if doc.get(name) is not None and not _is_strings(doc[name], mapping=True):
            return f"{name} must be a mapping of strings"
    runtime = (doc.get("image") or {}).get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        return f"image.runtime {runtime!r} is not one of {', '.join(RUNTIMES)}"
    for ip in doc["hosts"]:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return f"hosts[{ip!r}]: not an IP address"
    for name, pin in (doc.get("jump_keys") or {}).items():
        if not JUMP_NAME.fullmatch(name) or not PIN.fullmatch(pin):
            return f"jump_keys[{name!r}] must map ADDRESS:PORT to a SHA256 fingerprint"
    apps = doc.get("apps") or {}
    if not isinstance(apps, dict) or not all(_is_strings(a, mapping=True) for a in apps.values()):
        return "apps must map app names to mappings of strings"
    for ip, record in doc["hosts"].items():
        if not isinstance(record, dict):
            return f"hosts[{ip!r}] must be a mapping"
        for name in ("roles", "taints", "host_aliases"):
            if name in record and not _is_strings(record[name]):
                return f"hosts[{ip!r}].{name} must be a list of strings"
        if "labels" in record and not _is_strings(record["labels"], mapping=True):
            return f"hosts[{ip!r}].labels must be a mapping of strings"
        for name in (
            "env_digest",
            "version",
            "status",
            "hostname",
            "host_key",
            "registry",
            "registry_served",
        ):
            if record.get(name) is not None and not isinstance(record[name], str):
                return f"hosts[{ip!r}].{name} must be a string"
    return ""


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- journal patches: what one finished action changes in the state ----


def set_host(ip: str, record: HostRecord | dict) -> dict:
    data = record.to_json() if isinstance(record, HostRecord) else record
    return {"op": "set_host", "ip": ip, "record": data}


def update_host(ip: str, **fields) -> dict:
    return {"op": "update_host", "ip": ip, "fields": fields}


def delete_host(ip: str) -> dict:
    return {"op": "delete_host", "ip": ip}


def set_field(name: str, value) -> dict:
    if name not in PATCH_FIELDS:
        raise ValueError(f"no state field {name!r} to set")
    return {"op": "set", "field": name, "value": value}
