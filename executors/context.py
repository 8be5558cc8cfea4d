"""What the steps of one apply share: the plan and the desired cluster, the runtime, the hosts'
driver, the journal, and the small helpers every step uses (run a command with the host's env,
a host's node name, plugins, notes). One per apply; the steps (executors/steps/) read it."""

from __future__ import annotations

import threading

from cluster import image as images
from cluster import templates
from cluster.errors import SealerError
from cluster.model import Cluster, DrainPolicy, Image, Plan
from cluster.names import DEFAULT_DATA_ROOT, node_name_problem
from cluster.records import HostRecord, State, host_record
from executors import distribute, endpoint, facts
from executors.driver import Driver, Followed, HostError, Result
from executors.journal import Journal
from executors.plugins import plugins_for
from executors.runtimes import runtime_for
from executors.runtimes.base import ImageInputs, Runtime, internal_ip
from planner import registry as registry_rules


class ApplyContext:
    def __init__(
        self,
        plan: Plan,
        desired: Cluster | None,
        journal: Journal,
        driver: Driver,
        events,
        drain: DrainPolicy,
        image: Image | None = None,
    ):
        self.plan = plan
        self.desired = desired
        self.journal = journal
        self.driver = driver
        self.events = events
        state = journal.state
        self.image = image or (desired.image if desired else None)
        inputs = None
        if self.image is not None:
            added = (state.control_plane or {}).get("cert_sans") or ""  # from `sealer cert`
            registry = desired.registry if desired else None
            inputs = ImageInputs(
                self.image.rootfs,
                desired.kube_documents if desired else (),
                self.image.version,
                tuple(s for s in added.split(",") if s),
                registry.endpoint if registry else "",
            )
        self.runtime: Runtime = runtime_for(
            self.image.runtime if self.image else state.runtime, drain, inputs
        )
        self.cluster_name = plan.cluster
        recorded = state.control_plane or {}
        wanted = desired.control_plane if desired else {}
        self.data_root = wanted.get("data_root") or recorded.get("data_root") or DEFAULT_DATA_ROOT
        self.rootfs = distribute.rootfs_dir(self.cluster_name, self.data_root)
        self.configs = (
            distribute.rendered_configs(self.image, desired.configs)
            if desired and self.image
            else {}
        )
        self.templates = templates.rootfs_templates(self.image.rootfs) if self.image else {}
        self.registry_served, self.registry_client = (
            registry_rules.wanted(desired, state.lineage) if desired else ({}, {})
        )
        self.lock = threading.Lock()  # for the once-per-apply steps (registry CA, app images)
        self._hostnames: dict[str, str] = {}
        # What the preparations learn (executors/preparation.py): the hosts the relay looked
        # at (name, marker, machine), its receipts, and the once-per-apply checks done.
        self.seen: dict[str, facts.Seen] = {}
        self._instances: dict[str, Image] = {}  # machine -> the image's instance for it
        self._instances_lock = threading.Lock()
        self.receipts: dict = {}
        self.prepared: dict[str, tuple[str, BaseException | None]] = {}  # id -> (key, error)
        self.registry_ca_checked = False
        self.app_images_added = False

    @property
    def state(self) -> State:
        return self.journal.state

    def record(self, *patches: dict) -> None:
        self.journal.record(*patches)

    @property
    def bootstrap(self) -> str | None:
        return self.state.bootstrap_master

    # ---- hosts ----

    def desired_host(self, ip: str):
        return self.desired.hosts.get(ip) if self.desired else None

    def host_env(self, ip: str) -> dict[str, str]:
        host = self.desired_host(ip)
        return host.env if host else {}

    def run(
        self,
        ip: str,
        command: str,
        *,
        stdin: bytes = b"",
        check: bool = True,
        secrets: tuple[str, ...] = (),
        timeout: float | None = None,
    ) -> Result:
        """A command on the host with its env (the Clusterfile's, for hosts it lists)."""
        return self.driver.host(ip).run(
            command, env=self.host_env(ip), stdin=stdin, check=check, secrets=secrets,
            timeout=timeout,
        )  # fmt: skip

    def follow(self, ip: str, command: str) -> Followed:
        return self.driver.host(ip).follow(command, env=self.host_env(ip))

    def hostname(self, ip: str) -> str:
        """The host's node name: recorded, seen while it was prepared, or read now."""
        record = self.state.hosts.get(ip)
        name = self._hostnames.get(ip) or (record.hostname if record else "")
        if not name:
            name = facts.read(self.driver.host(ip), facts.hostname())
        problem = node_name_problem(name.lower())  # a host names itself: it reaches kubectl
        if problem:
            raise SealerError(f"{ip}: its hostname {name!r} {problem}; refused")
        self._hostnames[ip] = name
        return name

    def saw_hostname(self, ip: str, name: str) -> None:
        """The name a look at the host found (checked when it is used, by hostname())."""
        self._hostnames[ip] = name

    def name_and_marker(self, ip: str) -> facts.Seen:
        """The host's name, the rootfs it holds and its machine, in one round trip."""
        return facts.read(self.driver.host(ip), facts.name_and_marker(self.rootfs))

    def image_for(self, ip: str, machine: str) -> Image:
        """What this host installs: the image's instance for its machine (multi-arch images);
        a host whose architecture the image lacks is refused before anything is copied."""
        with self._instances_lock:  # one unpack per platform, not one per host
            if machine not in self._instances:
                try:
                    self._instances[machine] = images.instance_for(self.image, machine)
                except SealerError as e:
                    raise SealerError(f"{ip}: {e}") from None
            return self._instances[machine]

    def unanswered(self, ip: str) -> str:
        """Why a host cannot be reached ("" when it answers). Only a failed connection counts:
        a command that fails on a reachable host is still the action's failure."""
        try:
            self.driver.host(ip).run("true")
        except HostError as e:
            if e.unreachable:
                return e.message
            raise
        return ""

    def plugins(self, ip: str, phase: str | None, roles: tuple[str, ...]) -> None:
        """The Clusterfile's SHELL plugins of this phase that apply to this host, in order."""
        if not self.desired or not phase:
            return
        host = self.desired.hosts.get(ip)
        for name, script in plugins_for(self.desired.plugins, phase, roles, host):
            result = self.run(
                ip, f"mkdir -p {self.rootfs} && cd {self.rootfs} && {script}", check=False
            )
            if result.exit_code != 0:
                raise SealerError(
                    f"{ip}: plugin {name!r} ({phase}) exited with "
                    f"{result.exit_code}: {result.stderr.strip()[-300:]}"
                )

    def point_endpoint(self, ip: str, master: str) -> None:
        """The control-plane endpoint name resolves to `master` on this host."""
        name, _ = self.runtime.endpoint
        self.run(ip, endpoint.point_command(name, master))

    def host_record(self, ip: str, host_key: str) -> HostRecord:
        """What the state keeps of a host that joined."""
        record = host_record(
            self.desired.hosts[ip],
            lineage=self.state.lineage,
            version=self.image.version,
            status="ready",
            hostname=self._hostnames[ip],
            host_key=host_key,
        )
        return record.with_fields(
            registry=self.registry_client.get(ip, ""),
            registry_served=self.registry_served.get(ip, ""),
        )

    def control_plane(self) -> dict | None:
        """The Clusterfile's, keeping the names `sealer cert` added."""
        recorded = self.state.control_plane or {}
        kept = {k: recorded[k] for k in ("cert_sans",) if recorded.get(k)}
        return {**self.desired.control_plane, **kept} or None

    # ---- saying things ----

    def note(self, text: str) -> None:
        note = getattr(self.events, "note", None)  # a Listener says it; bare Events do not
        if note:
            note(text)

    def note_gone(self, ip: str, why: str, done: str) -> None:
        self.note(
            f"{ip} does not answer ({why}): {done}; whatever sealer installed on it stays there "
            f"until it is reinstalled or reset by hand"
        )

    # ---- what a runtime is given ----

    def ops(self, bootstrap: str | None = None) -> ActionOps:
        return ActionOps(self, bootstrap or self.bootstrap)


class ActionOps:
    """The NodeOps a runtime gets for one action (executors/runtimes/base.py)."""

    def __init__(self, ctx: ApplyContext, bootstrap: str):
        self._ctx = ctx
        self.bootstrap = bootstrap

    def run(self, ip: str, command: str, **options) -> Result:
        """As ApplyContext.run (stdin, check, secrets, timeout: NodeOps.run's options)."""
        return self._ctx.run(ip, command, **options)

    def follow(self, ip: str, command: str) -> Followed:
        return self._ctx.follow(ip, command)

    def name(self, ip: str) -> str:
        return self._ctx.hostname(ip)

    def address(self, ip: str) -> str:
        return ip

    def labels(self, ip: str) -> dict[str, str]:
        host = self._ctx.desired_host(ip)
        return dict(host.labels) if host else {}

    def taints(self, ip: str) -> list[str]:
        host = self._ctx.desired_host(ip)
        return list(host.taints) if host else []

    @property
    def version(self) -> str:
        return self._ctx.image.version

    @property
    def masters(self) -> list[str]:
        desired = self._ctx.desired
        return desired.masters if desired else self._ctx.state.masters

    @property
    def endpoint(self) -> tuple[str, int]:
        return self._ctx.runtime.endpoint

    @property
    def rootfs(self) -> str:
        return self._ctx.rootfs


class GoneHostOps(ActionOps):
    """The NodeOps of a host leaving the cluster that does not answer (down, or its key
    changed): what the masters do (drain, delete the node) runs; the host's own steps are
    skipped, as there is nothing to reach."""

    def __init__(self, ctx: ApplyContext, bootstrap: str, gone: str):
        super().__init__(ctx, bootstrap)
        self.gone = gone

    def run(self, ip: str, command: str, **kwargs) -> Result:
        if ip == self.gone:
            return Result(0, "", "")
        return super().run(ip, command, **kwargs)

    def name(self, ip: str) -> str:
        """The recorded name; else the node the cluster lists at that address (the host
        cannot say its own)."""
        record = self._ctx.state.hosts.get(ip)
        if ip != self.gone or (record and record.hostname):
            return super().name(ip)
        for name, node in self._ctx.runtime.nodes(self).items():
            if internal_ip(node) == ip:
                return name
        raise SealerError(
            f"{ip} does not answer and no node of the cluster has its address; remove it from "
            f"the state with `sealer state rm {ip}`"
        )
