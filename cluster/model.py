"""The plain data types shared by every layer. It imports only cluster.actions (the action
kinds, which import nothing of the project)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.actions import SPECS, Details, Kind, details_of

MASTER = "master"
WORKER = "node"

RUNTIMES = ("kubernetes", "k3s", "k0s")


@dataclass(frozen=True)
class Jump:
    """A host the SSH connection passes through on its way (a bastion, or one ProxyJump hop)."""

    address: str
    port: int = 22
    user: str = "root"
    key_file: str = ""
    key_passphrase: str = field(default="", repr=False)  # a secret
    password: str = field(default="", repr=False)  # a secret
    agent: bool = True  # may use the keys of $SSH_AUTH_SOCK when no key file is named

    @property
    def name(self) -> str:
        """How messages and the state's pins name it: ADDRESS:PORT."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SSH:
    user: str = "root"
    password: str = field(default="", repr=False)  # a secret: never printed nor stored
    key_file: str = ""
    key_passphrase: str = field(default="", repr=False)  # a secret too
    port: int = 22
    # the hops from the operator to the host, the operator's side first (spec.ssh.bastion, or
    # ~/.ssh/config's ProxyJump)
    jumps: tuple[Jump, ...] = ()
    agent: bool = True  # ssh.agent: the keys of $SSH_AUTH_SOCK when no key file is named
    address: str = ""  # where to connect when it is not the host's IP (~/.ssh/config HostName)
    proxy_command: str = ""  # ~/.ssh/config's ProxyCommand, run as OpenSSH would
    given: frozenset[str] = frozenset()  # the fields the Clusterfile set (they win over config)


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str
    remove: bool = False

    def __str__(self) -> str:
        if self.remove:
            return f"{self.key}-"
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True)
class Host:
    """One host as the Clusterfile wants it."""

    ip: str
    roles: tuple[str, ...]
    labels: dict[str, str]
    taints: tuple[str, ...]
    env: dict[str, str]  # cluster env merged under the host's own env
    ssh: SSH
    host_aliases: tuple[str, ...] = ()  # spec.hostAliases as hosts-file lines: "IP NAME..."

    @property
    def is_master(self) -> bool:
        return MASTER in self.roles


@dataclass(frozen=True)
class Image:
    """A resolved ClusterImage."""

    name: str  # what spec.image said (NAME:TAG or a path)
    rootfs: str  # local folder holding the rootfs
    digest: str  # "sha256:...": its manifest's (or index's), or over the rootfs files
    version: str
    runtime: str  # one of RUNTIMES
    kube_version: str = ""
    arch: str = ""
    variant: str = ""
    launch_cmds: tuple[str, ...] = ()  # CMDS (or the deprecated CMD): commands to run
    launch_apps: tuple[str, ...] = ()  # LAUNCH: apps to launch, in order
    apps: tuple = ()  # cluster.apps.App, every app the image carries
    kind: str = "cluster"  # "application": apps only, installed on a running cluster
    labels: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # the Kubefile's ENV: under apps' and hosts' env
    container_images: tuple = ()  # {name, source, digest, from}: what its registry/ holds
    platforms: tuple[str, ...] = ()  # linux/ARCH[/VARIANT] of each instance (OCI images)

    @property
    def is_application(self) -> bool:
        return self.kind == "application"

    def record(self) -> dict:
        """The fields kept in state and plans."""
        return {
            "name": self.name,
            "digest": self.digest,
            "version": self.version,
            "runtime": self.runtime,
        }


@dataclass(frozen=True)
class Document:
    """A Plugin, Config or kubeadm document carried along with the cluster."""

    kind: str
    name: str
    body: dict


@dataclass(frozen=True)
class Cluster:
    """The desired cluster, as loaded and checked from a Clusterfile."""

    name: str
    image: Image
    hosts: dict[str, Host]  # by IP, in Clusterfile order
    env: dict[str, str]
    cmd: tuple[str, ...]  # the raw launch commands: spec.cmd, the Application's, or the image's
    app_names: tuple[str, ...]
    apps: tuple = ()  # cluster.applications.AppLaunch, in launch order (none when cmd is set)
    apps_from: str = ""  # the image whose apps these are (spec.image)
    app_deletes: dict = field(default_factory=dict)  # app name -> commands when it is dropped
    plugins: tuple[Document, ...] = ()
    configs: tuple[Document, ...] = ()
    kube_documents: tuple[Document, ...] = ()
    control_plane: dict = field(default_factory=dict)  # endpoint and fields fixed at init
    registry: object = None  # cluster.registry.Registry, None: no registry to serve or use
    registry_spec: dict = field(default_factory=dict, repr=False, compare=False)  # has secrets
    app_image: Image | None = None  # spec.image when it is an application image
    ssh: SSH = field(default_factory=SSH)  # spec.ssh: also used for hosts being removed
    source: str = ""  # path of the Clusterfile
    source_digest: str = ""  # sha256 of its text

    @property
    def masters(self) -> list[str]:
        return [ip for ip, h in self.hosts.items() if h.is_master]

    @property
    def workers(self) -> list[str]:
        return [ip for ip, h in self.hosts.items() if not h.is_master]

    @property
    def launch_cmds(self) -> tuple[str, ...]:
        return self.cmd


@dataclass(frozen=True)
class DrainPolicy:
    """How a node is drained before it leaves or is upgraded (kubectl drain's own flags)."""

    timeout: float = 300.0  # seconds; then the action fails with the pods that blocked it
    force: bool = False  # also delete bare pods (no controller to recreate them)
    disable_eviction: bool = False  # delete instead of evict: ignores PodDisruptionBudgets
    skip: bool = False  # --no-drain: leave the pods where they are

    def kubectl_args(self) -> list[str]:
        args = ["--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={self.timeout:g}s"]
        if self.force:
            args.append("--force")
        if self.disable_eviction:
            args.append("--disable-eviction")
        return args


# ---- plans ----


@dataclass(frozen=True)
class Action:
    id: str
    kind: Kind
    host: str | None
    roles: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    details: Details = None  # typed, per kind (cluster/actions.py); reads as the JSON mapping

    def __post_init__(self):
        # A plain kind name or mapping (a saved plan, a test) becomes the typed one.
        if not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", Kind(self.kind))
        if not isinstance(self.details, Details):
            object.__setattr__(self, "details", details_of(self.kind, self.details))

    @property
    def spec(self):
        return SPECS[self.kind]

    @property
    def change(self) -> str | None:
        """What the action does to what it touches: "add", "change", "destroy" (None: a step)."""
        return self.spec.change(self.details)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "host": self.host,
            "roles": list(self.roles),
            "depends_on": list(self.depends_on),
            "details": self.details.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Action:
        return cls(
            id=data["id"],
            kind=Kind(data["kind"]),
            host=data["host"],
            roles=tuple(data["roles"]),
            depends_on=tuple(data["depends_on"]),
            details=details_of(data["kind"], data["details"]),
        )


@dataclass(frozen=True)
class Plan:
    cluster: str
    lineage: str | None  # None: the state does not exist yet
    serial: int
    actions: tuple[Action, ...]  # in a topological order
    image: dict | None  # the desired image record (None for a destroy plan)
    previous_image: dict | None
    bootstrap_master: str | None  # after the plan is applied
    destroy: bool = False
    changes: tuple[str, ...] = ()  # cluster-level changes, one line each
    targets: tuple[str, ...] = ()  # --target: only these hosts' actions (and what they need)
    left_out: tuple[str, ...] = ()  # with targets: the action ids the full plan also has
    replaced: tuple[str, ...] = ()  # --replace: hosts reset and joined again (-/+)

    @property
    def summary(self) -> dict[str, int]:
        return self.summary_of(a.id for a in self.actions)

    def summary_of(self, action_ids) -> dict[str, int]:
        """Hosts to add, change and destroy by these of the plan's actions."""
        chosen = set(action_ids)
        counts = {"add": 0, "change": 0, "destroy": 0}
        for action in self.actions:
            if action.id in chosen and action.change:
                counts[action.change] += 1
        return counts

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_json(self) -> dict:
        return {
            "format_version": "1",
            "cluster": self.cluster,
            "lineage": self.lineage,
            "serial": self.serial,
            "destroy": self.destroy,
            "image": self.image,
            "previous_image": self.previous_image,
            "bootstrap_master": self.bootstrap_master,
            "changes": list(self.changes),
            "targets": list(self.targets),
            "left_out": list(self.left_out),
            "replaced": list(self.replaced),
            "actions": [a.to_json() for a in self.actions],
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        return cls(
            cluster=data["cluster"],
            lineage=data["lineage"],
            serial=data["serial"],
            actions=tuple(Action.from_json(a) for a in data["actions"]),
            image=data["image"],
            previous_image=data["previous_image"],
            bootstrap_master=data["bootstrap_master"],
            destroy=data["destroy"],
            changes=tuple(data["changes"]),
            targets=tuple(data.get("targets") or ()),
            left_out=tuple(data.get("left_out") or ()),
            replaced=tuple(data.get("replaced") or ()),
        )


# ---- drift ----

DRIFT_KINDS = (
    "host_unreachable",
    "auth_failed",
    "host_key_changed",
    "node_missing",
    "node_not_ready",
    "unexpected_node",
    "version_mismatch",
    "labels_changed",
    "taints_changed",
    "etcd_member_missing",
    "etcd_member_unexpected",
    "endpoint_stale",
    "cert_expiring",
    "host_aliases_changed",
    "registry_unreachable",
    "registry_config_changed",
    "image_pull_failed",
)


@dataclass(frozen=True)
class Finding:
    """One way the live cluster differs from the state."""

    kind: str  # one of DRIFT_KINDS
    host: str  # an IP, or a node name the state does not know
    expected: object = None
    actual: object = None

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "host": self.host,
            "expected": self.expected,
            "actual": self.actual,
        }


# Why a refresh could not read a host, as said to the user.
UNREAD_REASONS = {
    "down": "down",
    "timed_out": "timed out",
    "auth_failed": "authentication failed",
    "host_key_changed": "host key changed",
    "bastion": "its bastion could not be used",  # the error names the bastion and why
    "unreadable": "could not be read",
}


@dataclass(frozen=True)
class HostFacts:
    """What a refresh read on one host (read-only)."""

    ip: str
    reachable: bool
    error: str = ""
    # why it could not be read (UNREAD_REASONS); "" when it was read
    reason: str = ""
    host_key: str = ""
    hostname: str = ""
    marker: str = ""
    machine: str = ""  # uname -m: which platform of a multi-arch image the host runs
    version: str | None = None
    services: tuple[str, ...] = ()
    endpoint: str | None = None  # where the control-plane endpoint name points ("" nowhere)
    cert_expires: float | None = None  # the API server certificate's notAfter (Unix time)
    host_aliases: tuple[str, ...] | None = None  # sealer's spec.hostAliases lines (None: not read)
    registry_addresses: tuple[str, ...] | None = None  # where its hosts file sends the registry
    registry_running: bool | None = None  # its registry process is alive (None: not read)
    checks: dict | None = None  # what sealer check reads (executors/prechecks.py); None: not read
    host_keys: tuple[str, ...] = ()  # fingerprints of sshd's key files now (default paths)


@dataclass(frozen=True)
class ClusterView:
    """The cluster's own view, read from a reachable master."""

    source: str | None  # the master it was read from; None when no master answered
    nodes: dict | None = None  # name -> {address, ready, version, labels, taints}
    etcd: frozenset | None = None  # member names
    error: str = ""
    # The pods' containers that cannot get their image: ({pod, node, container, image, reason,
    # message}, ...); None when the pods could not be listed.
    pull_failures: tuple | None = None
