"""Apply a plan: run its DAG on the hosts and record every finished action in the state.

Each action prepares its host (facts, rootfs, init.sh, plugins), asks the runtime for the
distribution's commands, and on success appends one patch to the state journal. A failed action
records nothing, so the next plan proposes it again; its dependents are skipped.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from cluster import templates
from cluster.apps import APPS_DIR, name_problem
from cluster.digests import configs_digest
from cluster.errors import SealerError
from cluster.model import Action, Cluster, DrainPolicy, Image, Plan
from cluster.names import DEFAULT_DATA_ROOT, node_name_problem
from cluster.records import (
    HostRecord,
    State,
    delete_host,
    host_record,
    set_field,
    set_host,
    update_host,
)
from executors import apps, distribute, endpoint, facts, hostsfile, relay
from executors import registry as registry_remote
from executors import templates as templates_remote
from executors.driver import Driver, Followed, HostError, Result
from executors.facts import HOST_ALIASES_MARK
from executors.fanout import fan_out
from executors.plugins import plugins_for
from executors.runtimes import runtime_for
from executors.runtimes.base import Runtime, internal_ip
from executors.scheduler import Events, Outcome, run_dag
from planner import registry as registry_rules

# Actions whose host is prepared ahead of its turn.
PREPARED_KINDS = ("init_cluster", "join_master", "join_worker", "upgrade_master", "upgrade_worker")
JOIN_KINDS = ("join_master", "join_worker")


@dataclass
class ApplyOptions:
    parallelism: int = 10
    drain: DrainPolicy = DrainPolicy()
    relay: bool = os.environ.get("SEALER_RELAY", "1") != "0"  # executors/relay.py


RELAY_MIN_HOSTS = 3  # fewer hosts: a direct copy each is as fast


class ActionOps:
    """The NodeOps a runtime gets for one action."""

    def __init__(self, applier: Applier, bootstrap: str):
        self._applier = applier
        self.bootstrap = bootstrap

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
        return self._applier.run(
            ip, command, stdin=stdin, check=check, secrets=secrets, timeout=timeout
        )

    def follow(self, ip: str, command: str) -> Followed:
        return self._applier.follow(ip, command)

    def name(self, ip: str) -> str:
        return self._applier.hostname(ip)

    def address(self, ip: str) -> str:
        return ip

    def labels(self, ip: str) -> dict[str, str]:
        host = self._applier.desired_host(ip)
        return dict(host.labels) if host else {}

    def taints(self, ip: str) -> list[str]:
        host = self._applier.desired_host(ip)
        return list(host.taints) if host else []

    @property
    def version(self) -> str:
        return self._applier.image.version

    @property
    def masters(self) -> list[str]:
        desired = self._applier.desired
        return desired.masters if desired else self._applier.state.masters

    @property
    def endpoint(self) -> tuple[str, int]:
        return self._applier.runtime.endpoint

    @property
    def rootfs(self) -> str:
        return self._applier.rootfs


class GoneHostOps(ActionOps):
    """The NodeOps of a host leaving the cluster that does not answer (down, or its key
    changed): what the masters do (drain, delete the node) runs; the host's own steps are
    skipped, as there is nothing to reach."""

    def __init__(self, applier: Applier, bootstrap: str, gone: str):
        super().__init__(applier, bootstrap)
        self.gone = gone

    def run(self, ip: str, command: str, **kwargs) -> Result:
        if ip == self.gone:
            return Result(0, "", "")
        return super().run(ip, command, **kwargs)

    def name(self, ip: str) -> str:
        """The recorded name; else the node the cluster lists at that address (the host
        cannot say its own)."""
        record = self._applier.state.hosts.get(ip)
        if ip != self.gone or (record and record.hostname):
            return super().name(ip)
        for name, node in self._applier.runtime.nodes(self).items():
            if internal_ip(node) == ip:
                return name
        raise SealerError(
            f"{ip} does not answer and no node of the cluster has its address; remove it from "
            f"the state with `sealer state rm {ip}`"
        )


class Applier:
    def __init__(
        self,
        plan: Plan,
        desired: Cluster | None,
        backend,
        state: State,
        driver: Driver,
        events: Events,
        options: ApplyOptions,
        image: Image | None = None,
        stop: threading.Event | None = None,
    ):
        self.plan = plan
        self.desired = desired
        self.backend = backend
        self.state = state  # typed, as each finished action left it
        self._doc = state.to_json()  # the same, as the backend journals it
        self.original = state.to_json()
        self.driver = driver
        self.events = events
        self.options = options
        self.image = image or (desired.image if desired else None)
        runtime_name = self.image.runtime if self.image else state.runtime
        self.runtime: Runtime = runtime_for(runtime_name)
        self.runtime.drain_policy = options.drain
        if self.image is not None:
            documents = desired.kube_documents if desired else ()
            added = (state.control_plane or {}).get("cert_sans") or ""  # from `sealer cert`
            self.runtime.configure(
                self.image.rootfs, documents, self.image.version, [s for s in added.split(",") if s]
            )
        self.cluster_name = plan.cluster
        recorded = state.control_plane or {}
        wanted = desired.control_plane if desired else {}
        self.data_root = wanted.get("data_root") or recorded.get("data_root") or DEFAULT_DATA_ROOT
        self.rootfs = distribute.rootfs_dir(self.cluster_name, self.data_root)
        self._state_lock = threading.Lock()
        self._hostnames: dict[str, str] = {}
        self._configs = (
            distribute.rendered_configs(self.image, desired.configs)
            if desired and self.image
            else {}
        )
        self._templates = templates.rootfs_templates(self.image.rootfs) if self.image else {}
        self.stop = stop or threading.Event()  # set: start no new action
        self._registry_served, self._registry_client = (
            registry_rules.wanted(desired, state.lineage) if desired else ({}, {})
        )
        self._prepared: dict[str, Future] = {}  # action id -> its host's preparation
        self._relayed: Future | None = None  # _relay_rootfs, when the relay is used
        self._received: dict[str, bool] = {}  # host -> the relay left it a verified tarball
        self._app_images_added = False
        self._registry_ca_checked = False

    # ---- facts and helpers used by ActionOps ----

    def desired_host(self, ip: str):
        return self.desired.hosts.get(ip) if self.desired else None

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
        return self.driver.host(ip).run(
            command,
            env=self._host_env(ip),
            stdin=stdin,
            check=check,
            secrets=secrets,
            timeout=timeout,
        )

    def follow(self, ip: str, command: str) -> Followed:
        return self.driver.host(ip).follow(command, env=self._host_env(ip))

    def _host_env(self, ip: str) -> dict[str, str]:
        host = self.desired_host(ip)
        return host.env if host else {}

    def hostname(self, ip: str) -> str:
        record = self.state.hosts.get(ip)
        name = self._hostnames.get(ip) or (record.hostname if record else "")
        if not name:
            name = facts.read(self.driver.host(ip), facts.hostname())
        problem = node_name_problem(name.lower())  # a host names itself: it reaches kubectl
        if problem:
            raise SealerError(f"{ip}: its hostname {name!r} {problem}; refused")
        self._hostnames[ip] = name
        return name

    @property
    def bootstrap(self) -> str | None:
        return self.state.bootstrap_master

    def _record(self, *patches: dict) -> None:
        with self._state_lock:
            for patch in patches:
                self.backend.append(self._doc, patch)
                self.state = self.state.patched(patch)

    # ---- the run ----

    def run_plan(self) -> Outcome:
        # Hosts are prepared (rootfs copied, init.sh run) as early as possible, while the DAG
        # waits on the control plane: copying 30 MB to 20 hosts is the longest step of a first
        # apply, and it depends on nothing in the cluster.
        # --parallelism, as far as the open-file limit allows
        width = fan_out(len(self.plan.actions) or 1, self.options.parallelism)
        prep_pool = ThreadPoolExecutor(width, thread_name_prefix="prepare")
        # A host that leaves before it joins again (--replace, a role change) is prepared in
        # its join, after its removal cleaned it, not ahead.
        leaving = {
            a.host for a in self.plan.actions if a.kind in ("delete_master", "delete_worker")
        }
        early = [a for a in self.plan.actions if a.kind in PREPARED_KINDS and a.host not in leaving]
        prepared = list(dict.fromkeys(a.host for a in early))
        if self.options.relay and self.image and len(prepared) >= RELAY_MIN_HOSTS:
            self._relayed = prep_pool.submit(self._relay_rootfs, prepared)
        for action in early:  # in plan order: the first master's host goes first
            self._prepared[action.id] = prep_pool.submit(self._prepare_for, action)
        try:
            outcome = run_dag(self.plan.actions, self.execute, width, self.events, self.stop)
            if outcome.ok:
                self._finish()
            return outcome
        finally:
            prep_pool.shutdown(wait=True, cancel_futures=True)
            self.driver.close()
            self.backend.write(self._doc, self.original)

    def _preparation(self, action: Action) -> str:
        """The host's preparation: done ahead (see run_plan), or now."""
        ahead = self._prepared.get(action.id)
        return ahead.result() if ahead is not None else self._prepare_for(action)

    def _relay_rootfs(self, ips: list[str]) -> tuple[dict, dict]:
        """Look at every host at once; send the image's tarball to those that need it through
        the hosts themselves (executors/relay.py). Returns (name and marker by host, relay
        receipts by host); a host without a good receipt is sent the tarball directly."""
        with ThreadPoolExecutor(min(len(ips), 64)) as pool:
            seen = dict(zip(ips, pool.map(self._name_and_marker, ips), strict=True))
        # Hosts that hold an older rootfs get only what changed (executors/delta.py).
        needing = [ip for ip in ips if not seen[ip][1]]
        if len(needing) < RELAY_MIN_HOSTS:
            return seen, {}
        source = distribute.tarball(self.image, {})  # the image only: Configs go over SSH
        dest = distribute.received_path(self.cluster_name, self.data_root)
        receipts = relay.Relay(self.driver, source, dest, needing).run()
        direct = {ip: r.error for ip, r in receipts.items() if not r.ok}
        self._note(
            f"relay: {len(needing) - len(direct)} of {len(needing)} hosts got the image "
            f"through the cluster"
            + "".join(f"\n  {ip}: sent directly: {why}" for ip, why in sorted(direct.items()))
        )
        return seen, receipts

    def _prepare_for(self, action: Action) -> str:
        # Connect and look at the host now, while the first host copies.
        relayed, receipts = {}, {}
        if self._relayed is not None:
            with contextlib.suppress(Exception):  # a relay that failed whole: copy directly
                relayed, receipts = self._relayed.result()
        seen = relayed.get(action.host) or self._name_and_marker(action.host)
        received = receipts.get(action.host)
        self._received[action.host] = bool(received and received.ok)
        first = self._prepared.get(f"init_cluster.{self.plan.bootstrap_master}")
        if first is not None and action.kind != "init_cluster" and not receipts:
            # The first master's copy goes first, alone: the whole cluster waits on it.
            with contextlib.suppress(Exception):
                first.result()
        if action.kind.startswith("upgrade_"):  # copy only: new binaries go in during the action
            return self._prepare(action.host, action.roles, None, install=False, seen=seen)
        key = self._prepare(
            action.host,
            action.roles,
            "pre-init-host",
            "post-init-host",
            seen=seen,
            alone=action.kind == "init_cluster",  # the others wait for it (above)
            # A joining node reaches the control plane through the plan's bootstrap master
            # (see _join): set with the host aliases, in the same edit of the hosts file.
            endpoint_to=self.plan.bootstrap_master if action.kind in JOIN_KINDS else None,
        )
        # Before the runtime starts: kubeadm init and the kubelets pull from the registry.
        if self._registry_served.get(action.host):
            self._serve_registry(action.host)
        if self._registry_client:
            self._configure_registry(action.host)
        return key

    def _finish(self) -> None:
        if self.plan.destroy:
            self._record(
                set_field("image", None),
                set_field("bootstrap_master", None),
                set_field("launch_digest", None),
                set_field("configs_digest", None),
                set_field("control_plane", None),
                set_field("apps", {}),
            )
        elif self.plan.targets and self.state.image:
            # A targeted apply changed some hosts only: the cluster's image, configs and
            # control plane stay as recorded, so the next full plan still brings the others.
            return
        else:
            self._record(
                set_field("image", self.plan.image),
                set_field("configs_digest", configs_digest(self.desired)),
                set_field("control_plane", self._control_plane()),
            )

    def _control_plane(self) -> dict | None:
        """The Clusterfile's, keeping the names `sealer cert` added."""
        recorded = self.state.control_plane or {}
        kept = {k: recorded[k] for k in ("cert_sans",) if recorded.get(k)}
        return {**self.desired.control_plane, **kept} or None

    def execute(self, action: Action) -> None:
        handler = getattr(self, f"_do_{action.kind}")
        handler(action)
        record = self.state.hosts.get(action.host or "")
        if record is not None and not record.host_key:  # forgotten: pin the key seen now
            self._record(
                update_host(action.host, host_key=self.driver.host(action.host).host_key())
            )

    def _ops(self, bootstrap: str | None = None) -> ActionOps:
        return ActionOps(self, bootstrap or self.bootstrap)

    # ---- host preparation and cleaning ----

    def _prepare(
        self,
        ip: str,
        roles: tuple[str, ...],
        phase_before: str | None,
        phase_after: str | None = None,
        install: bool = True,
        seen: tuple[str, str] | None = None,
        alone: bool = False,
        endpoint_to: str | None = None,
    ) -> str:
        """Facts (unless seen already), plugins, the rootfs and its init.sh. Returns the host key
        fingerprint. alone: no other host copies meanwhile. endpoint_to: the master the
        control-plane endpoint name is mapped to on this host."""
        remote = self.driver.host(ip)
        self._hostnames[ip], current = seen or self._name_and_marker(ip)
        self._plugins(ip, phase_before, roles)
        init = f"bash {self.rootfs}/scripts/init.sh"
        templated = bool(self._templates)  # rendered for this host before init.sh reads them
        distribute.distribute(
            remote,
            self.image,
            self.cluster_name,
            self._configs,
            current,
            then=init if install and not templated else "",
            alone=alone,
            data_root=self.data_root,
            received=self._received.get(ip, False),
        )
        if templated:
            self._render_templates(ip)
            if install:
                self.run(ip, init)
        self._set_host_aliases(ip, endpoint_to)
        if phase_after:
            self._plugins(ip, phase_after, roles)
        return remote.host_key()

    def _render_templates(self, ip: str) -> None:
        """The rootfs' `*.tmpl` files (etc/, charts/, manifests/) rendered with this host's env
        over the image's, each written beside its template, which is removed."""
        host = self.desired_host(ip)
        values = {**self.image.env, **(host.env if host else {})}
        self.run(
            ip,
            templates_remote.install_command(self.rootfs),
            stdin=templates_remote.packed(self._templates, values),
        )

    def _set_host_aliases(self, ip: str, endpoint_to: str | None = None) -> None:
        """spec.hostAliases in the host's hosts file (none: sealer's alias lines removed), and
        the endpoint name mapped to the master `endpoint_to` when given."""
        host = self.desired_host(ip)
        lines = {HOST_ALIASES_MARK: list(host.host_aliases) if host else []}
        if endpoint_to:
            lines[endpoint.MARK] = endpoint.point_lines(self.runtime.endpoint[0], endpoint_to)
        self.run(ip, hostsfile.set_marked_lines_command(lines))

    def _check_registry_ca(self) -> None:
        """Once per apply, before the first registry step: this machine holds the CA the
        running registry's certificate comes from (checked on a host that serves it)."""
        registry = self.desired.registry
        if not registry or registry.insecure or registry.kind != "local":
            return
        with self._state_lock:
            if self._registry_ca_checked:
                return
            serving = [ip for ip, r in self.state.hosts.items() if r.registry_served]
            if serving:
                remote = self.driver.host(serving[0])
                registry_remote.check_ca(remote, serving[0], self.rootfs, self.cluster_name)
            self._registry_ca_checked = True

    def _serve_registry(self, ip: str) -> None:
        self._check_registry_ca()
        registry_remote.serve(
            self.driver.host(ip),
            ip,
            self.desired.registry,
            self.image,
            self.rootfs,
            self.cluster_name,
        )

    def _configure_registry(self, ip: str) -> None:
        self._check_registry_ca()
        registry = self.desired.registry
        registry_remote.configure(
            self.driver.host(ip),
            ip,
            registry,
            registry.serving_hosts(self.desired.masters),
            self.image.runtime,
            self.cluster_name,
        )

    def _add_app_images(self) -> None:
        """An application image's container images, into every serving registry (once)."""
        app_image = self.desired.app_image
        if not app_image or not app_image.container_images or not self.desired.registry:
            return
        with self._state_lock:
            if self._app_images_added:
                return
            for ip, record in self.state.hosts.items():
                if record.registry_served:
                    registry_remote.add_images(self.driver.host(ip), app_image, self.rootfs)
            self._app_images_added = True

    def _clean(self, ip: str, roles: tuple[str, ...]) -> None:
        rootfs = self.rootfs
        self.run(ip, registry_remote.stop_command(rootfs, remove=True))
        registry = self.desired.registry if self.desired else None
        if registry:
            self.run(ip, registry_remote.unconfigure_command(registry.endpoint, registry.mirrored))
        else:
            self.run(ip, registry_remote.unconfigure_command(""))
        self.run(ip, f"test ! -f {rootfs}/scripts/clean.sh || bash {rootfs}/scripts/clean.sh")
        distribute.remove(self.driver.host(ip), self.cluster_name, self.data_root)
        self.run(ip, endpoint.remove_command())
        self.run(ip, hostsfile.set_lines_command(HOST_ALIASES_MARK, []))
        self._plugins(ip, "post-clean-host", roles)

    def _plugins(self, ip: str, phase: str | None, roles: tuple[str, ...]) -> None:
        if not self.desired or not phase:
            return
        rootfs = self.rootfs
        host = self.desired.hosts.get(ip)
        for name, script in plugins_for(self.desired.plugins, phase, roles, host):
            result = self.run(ip, f"mkdir -p {rootfs} && cd {rootfs} && {script}", check=False)
            if result.exit_code != 0:
                raise SealerError(
                    f"{ip}: plugin {name!r} ({phase}) exited with "
                    f"{result.exit_code}: {result.stderr.strip()[-300:]}"
                )

    def _name_and_marker(self, ip: str) -> tuple[str, str]:
        """The host's name and the rootfs it holds, in one round trip."""
        fact = facts.name_and_marker(self.rootfs)
        return facts.read(self.driver.host(ip), fact)

    def _host_record(self, ip: str, host_key: str) -> HostRecord:
        record = host_record(
            self.desired.hosts[ip],
            lineage=self.state.lineage,
            version=self.image.version,
            status="ready",
            hostname=self._hostnames[ip],
            host_key=host_key,
        )
        return record.with_fields(
            registry=self._registry_client.get(ip, ""),
            registry_served=self._registry_served.get(ip, ""),
        )

    # ---- one method per action kind ----

    def _do_init_cluster(self, action: Action) -> None:
        ip = action.host
        key = self._preparation(action)
        self._plugins(ip, "pre-install", action.roles)
        self._point_endpoint(ip, ip)
        self.runtime.init(self._ops(bootstrap=ip), ip)
        self._plugins(ip, "post-install", action.roles)
        self._record(
            set_field("image", self.plan.image),
            set_field("bootstrap_master", ip),
            set_field("control_plane", self._control_plane()),
            set_host(ip, self._host_record(ip, key)),
        )

    def _join(self, action: Action, join) -> None:
        """The node reaches the control plane through the endpoint name, mapped to a running
        master (the plan's bootstrap master, which stays); a new master then serves itself."""
        ip = action.host
        key = self._preparation(action)  # it points the endpoint at the bootstrap master
        join(self._ops(), ip)
        if action.kind == "join_master":
            self._point_endpoint(ip, ip)
        self._record(set_host(ip, self._host_record(ip, key)))

    def _point_endpoint(self, ip: str, master: str) -> None:
        name, _ = self.runtime.endpoint
        self.run(ip, endpoint.point_command(name, master))

    def _do_join_master(self, action: Action) -> None:
        self._join(action, self.runtime.join_master)

    def _do_join_worker(self, action: Action) -> None:
        self._join(action, self.runtime.join_worker)

    def _delete(self, action: Action, leave) -> None:
        ip = action.host
        handover = action.details.get("hands_bootstrap_to")
        gone = self._unanswered(ip)
        if gone:  # a dead host leaves the Clusterfile: the masters still forget it
            self._note_gone(ip, gone, "removed through the masters only")
            ops = GoneHostOps(self, handover or self.bootstrap, ip)
            leave(ops, ip)
            if action.kind == "delete_master":
                self.runtime.forget_member(ops, ip)
        else:
            self._plugins(ip, "pre-clean-host", action.roles)
            leave(self._ops(bootstrap=handover), ip)
            self._clean(ip, action.roles)
        patches = [delete_host(ip)]
        if handover:
            patches.append(set_field("bootstrap_master", handover))
        self._record(*patches)

    def _unanswered(self, ip: str) -> str:
        """Why a host cannot be reached ("" when it answers). Only a failed connection counts:
        a command that fails on a reachable host is still the action's failure."""
        try:
            self.driver.host(ip).run("true")
        except HostError as e:
            if e.unreachable:
                return e.message
            raise
        return ""

    def _note_gone(self, ip: str, why: str, done: str) -> None:
        self._note(
            f"{ip} does not answer ({why}): {done}; whatever sealer installed on it stays there "
            f"until it is reinstalled or reset by hand"
        )

    def _note(self, text: str) -> None:
        note = getattr(self.events, "note", None)  # a Listener says it; bare Events do not
        if note:
            note(text)

    def _do_delete_master(self, action: Action) -> None:
        self._delete(action, self.runtime.delete_master)

    def _do_delete_worker(self, action: Action) -> None:
        self._delete(action, self.runtime.delete_worker)

    def _upgrade(self, action: Action, upgrade) -> None:
        ip = action.host
        self._preparation(action)  # the new rootfs is on the host: install it
        self._plugins(ip, "upgrade-host", action.roles)
        self.run(ip, f"bash {self.rootfs}/scripts/init.sh")
        upgrade(self._ops(), ip)
        self._record(update_host(ip, version=action.details["to"]))

    def _do_upgrade_master(self, action: Action) -> None:
        self._upgrade(action, self.runtime.upgrade_master)

    def _do_upgrade_worker(self, action: Action) -> None:
        self._upgrade(action, self.runtime.upgrade_worker)

    def _do_upgrade_batch(self, action: Action) -> None:
        """A barrier between batches: nothing to do on any host."""

    def _do_update_host(self, action: Action) -> None:
        ip = action.host
        old = self.state.hosts[ip]
        self.runtime.set_labels_and_taints(self._ops(), ip, old.labels, list(old.taints))
        self._set_host_aliases(ip)
        if self._templates:  # the env may have changed: render again
            self._render_templates(ip)
        new = host_record(self.desired.hosts[ip], lineage=self.state.lineage, version="", status="")
        self._record(
            update_host(
                ip,
                roles=list(new.roles),
                labels=dict(new.labels),
                taints=list(new.taints),
                env_digest=new.env_digest,
                host_aliases=list(new.host_aliases),
            )
        )

    def _do_reconfigure_master(self, action: Action) -> None:
        self.runtime.reconfigure_master(self._ops(), action.host)

    def _do_update_endpoint(self, action: Action) -> None:
        """Move a node's endpoint to a master that stays, before its master leaves."""
        self._point_endpoint(action.host, action.details["to"])

    def _do_sync_rootfs(self, action: Action) -> None:
        """Copy the image's new content; the runtime and its version stay as they are."""
        self._prepare(action.host, action.roles, None, install=False)

    def _do_serve_registry(self, action: Action) -> None:
        self._serve_registry(action.host)
        self._record(update_host(action.host, registry_served=self._registry_served[action.host]))

    def _do_stop_registry(self, action: Action) -> None:
        self.run(action.host, registry_remote.stop_command(self.rootfs, remove=True))
        self._record(update_host(action.host, registry_served=""))

    def _do_configure_registry(self, action: Action) -> None:
        ip = action.host
        if self.desired.registry is None:  # its lines go; the state never kept its endpoint
            self.run(ip, registry_remote.unconfigure_command(""))
        else:
            self._configure_registry(ip)
        self._record(update_host(ip, registry=self._registry_client.get(ip, "")))

    def _do_launch_apps(self, action: Action) -> None:
        rootfs = self.rootfs
        for command in action.details["commands"]:
            self.run(action.host, f"cd {rootfs} && {command}")
        self._record(set_field("launch_digest", action.details["digest"]))

    def _do_launch_app(self, action: Action) -> None:
        """Put the app's folder in the rootfs on the bootstrap master and run its commands
        there, with the host's env under the app's."""
        name = action.details["app"]
        app = next(a for a in self.desired.apps if a.name == name)
        ip = action.host
        self._add_app_images()
        env = {**self._host_env(ip), **{k: v for k, v in app.env.items() if k.isidentifier()}}
        folder = f"{self.rootfs}/{APPS_DIR}/{name}"
        self.run(ip, apps.install_command(folder), stdin=apps.packed(app, env))
        for command in action.details["commands"]:
            self.driver.host(ip).run(f"cd {shlex.quote(folder)} && {command}", env=env)
        recorded = {"digest": action.details["digest"], "image": action.details["image"]}
        self._record(set_field("apps", {**self.state.apps, name: recorded}))

    def _do_remove_app(self, action: Action) -> None:
        """The Application's delete commands (if any) in the app's folder, then the folder goes
        and the state forgets the app."""
        name, ip = action.details["app"], action.host
        if name_problem(name):  # the name comes from the state, and becomes a path to remove
            raise SealerError(f"app {name!r} in the state {name_problem(name)}; refused")
        folder = shlex.quote(f"{self.rootfs}/{APPS_DIR}/{name}")
        for command in action.details.get("commands") or ():
            self.run(ip, f"mkdir -p {folder} && cd {folder} && {command}")
        self.run(ip, f"rm -rf {folder}")
        remaining = {k: v for k, v in self.state.apps.items() if k != name}
        self._record(set_field("apps", remaining))

    def _do_reset_cluster(self, action: Action) -> None:
        ip = action.host
        gone = self._unanswered(ip)
        if gone:  # nothing can reach it, and the cluster it was part of is going away
            self._note_gone(ip, gone, "forgotten without a reset")
            self._record(delete_host(ip))
            return
        record = self.state.hosts.get(ip)
        master = "master" in (record.roles if record else action.roles)
        self._plugins(ip, "pre-clean-host", action.roles)
        self.runtime.reset(self._ops(), ip, master)
        self._clean(ip, action.roles)
        self._record(delete_host(ip))
