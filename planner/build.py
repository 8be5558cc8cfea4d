"""Planning rules: which actions turn the recorded cluster into the desired one, in what order.

- A new cluster: init_cluster on the first master, the other masters join one at a time, the
  workers join in parallel after the init.
- A running cluster: existing masters upgrade one at a time (bootstrap first), then workers in
  batches of at most max_unavailable; new masters join one at a time after the control plane is
  upgraded (so they join at the new version); then removed masters leave one at a time, the
  bootstrap master last; before the bootstrap master leaves, the workers that stay move their
  endpoint (update_endpoint) to the new one. Removed workers leave independently. Hosts whose labels, taints or env
  changed get update_host. A host that changes between master and worker is removed and re-joined.
"""

from __future__ import annotations

import math
import re

from cluster import actions
from cluster.actions import (
    BatchDetails,
    EndpointDetails,
    Kind,
    LaunchAppDetails,
    LaunchDetails,
    LeaveDetails,
    NodeDetails,
    RemoveAppDetails,
    SyncRootfsDetails,
    UpdateHostDetails,
    UpgradeDetails,
    action_id,
)
from cluster.digests import configs_digest, launch_digest
from cluster.errors import SealerError
from cluster.kubeadm import CHANGEABLE
from cluster.model import MASTER, WORKER, Cluster, Plan
from cluster.names import DEFAULT_DATA_ROOT
from cluster.records import State
from planner import registry as registry_rules
from planner.explain import explain
from planner.graph import ActionGraph
from planner.records import EnvDigests, desired_record
from planner.target import restrict
from planner.versions import check_transition, check_version_step, is_upgrade

DEFAULT_MAX_UNAVAILABLE = "10%"


class PlanError(SealerError):
    pass


def batch_size(max_unavailable: str | int, workers: int) -> int:
    """N, or P% of the workers rounded down; at least 1."""
    text = str(max_unavailable).strip()
    m = re.fullmatch(r"(\d+)(%?)", text)
    if not m or (m[2] and int(m[1]) > 100):
        raise PlanError(f"--max-unavailable: {text!r} is not a count (3) or a percentage (10%)")
    value = int(m[1])
    if m[2]:
        value = math.floor(workers * value / 100)
    return max(1, value)


def make_plan(
    desired: Cluster,
    state: State,
    max_unavailable=DEFAULT_MAX_UNAVAILABLE,
    replace: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
) -> Plan:
    """replace: hosts to reset and join again; targets: keep only these hosts' actions and
    what they need (planner/target.py)."""
    image = desired.image.record()
    previous_image = state.image
    check_transition(previous_image, image)
    _check_hosts("--replace", replace, desired, state, both=True)
    _check_hosts("--target", targets, desired, state)
    graph = ActionGraph()
    if state.hosts:
        bootstrap = _plan_running_cluster(graph, desired, state, max_unavailable, set(replace))
    else:
        bootstrap = _plan_new_cluster(graph, desired)
    _plan_launch(graph, desired, state, bootstrap)
    _plan_apps(graph, desired, state, bootstrap)
    changes = ()
    if previous_image and previous_image != image:
        changes = tuple(f"image.{line}" for line in explain(previous_image, image))
    actions, left_out = graph.ordered(), ()
    if targets:
        actions, left_out = restrict(actions, frozenset(targets))
    return Plan(
        cluster=desired.name,
        lineage=state.stored_lineage,
        serial=state.serial,
        actions=actions,
        image=image,
        previous_image=previous_image,
        bootstrap_master=bootstrap,
        changes=changes,
        targets=tuple(targets),
        left_out=left_out,
        replaced=tuple(replace),
    )


def _check_hosts(flag: str, ips, desired: Cluster, state: State, both: bool = False) -> None:
    """A --target names a host of the Clusterfile or the state; a --replace one of both."""
    for ip in ips:
        if both and not (ip in desired.hosts and ip in state.hosts):
            where = "the Clusterfile" if ip not in desired.hosts else "the state (not joined yet)"
            raise PlanError(f"{flag} {ip}: not a host of {where}; only a running host is replaced")
        if ip not in desired.hosts and ip not in state.hosts:
            raise PlanError(f"{flag} {ip}: not a host of the Clusterfile nor of the state")


def make_destroy_plan(state: State) -> Plan:
    """reset_cluster on every host: workers in parallel, then masters one by one, bootstrap last."""
    graph = ActionGraph()
    hosts = state.hosts
    bootstrap = state.bootstrap_master
    workers = [ip for ip, r in hosts.items() if not r.is_master]
    masters = [ip for ip, r in hosts.items() if r.is_master and ip != bootstrap]
    if bootstrap in hosts:
        masters.append(bootstrap)
    worker_resets = [graph.add(Kind.RESET_CLUSTER, ip, hosts[ip].roles) for ip in workers]
    previous = None
    for ip in masters:
        deps = worker_resets if previous is None else [previous]
        previous = graph.add(Kind.RESET_CLUSTER, ip, hosts[ip].roles, deps)
    return Plan(
        cluster=state.cluster,
        lineage=state.stored_lineage,
        serial=state.serial,
        actions=graph.ordered(),
        image=None,
        previous_image=state.image,
        bootstrap_master=None,
        destroy=True,
    )


def _plan_new_cluster(graph: ActionGraph, desired: Cluster) -> str:
    first, *other_masters = desired.masters
    hosts = desired.hosts
    init = graph.add(
        Kind.INIT_CLUSTER, first, hosts[first].roles, details=_join_details(desired, first)
    )
    previous = init
    for ip in other_masters:
        previous = graph.add(
            Kind.JOIN_MASTER, ip, hosts[ip].roles, [previous], details=_join_details(desired, ip)
        )
    for ip in desired.workers:
        graph.add(Kind.JOIN_WORKER, ip, hosts[ip].roles, [init], details=_join_details(desired, ip))
    return first


def _plan_running_cluster(
    graph: ActionGraph, desired: Cluster, state: State, max_unavailable, replace: set[str]
) -> str:
    recorded = state.hosts
    wanted = desired.hosts
    key = state.lineage
    version = desired.image.version

    # A host that changes between master and worker is removed, then joined again; so is a
    # host given to --replace (a broken node).
    replaced = {
        ip for ip in wanted if ip in recorded and wanted[ip].is_master != recorded[ip].is_master
    } | replace
    # A replaced master rejoins after it left (below), not in the chain of new masters.
    rejoining = [ip for ip in replace if wanted[ip].is_master and recorded[ip].is_master]
    removed = [ip for ip in recorded if ip not in wanted or ip in replaced]
    added = [ip for ip in wanted if ip not in recorded or ip in replaced]
    kept = [ip for ip in wanted if ip in recorded and ip not in replaced]

    kept_masters = [ip for ip in kept if wanted[ip].is_master]
    if not kept_masters:
        current = state.masters
        if replace & set(current):
            raise PlanError(
                f"--replace {', '.join(sorted(replace & set(current)))}: a replaced master "
                f"rejoins through another master, and no other master stays; add a master first"
            )
        raise PlanError(
            f"this change removes every current master ({', '.join(current)}); keep at least "
            f"one master in the Clusterfile so the others can join its control plane"
        )
    old_bootstrap = state.bootstrap_master
    bootstrap = old_bootstrap if old_bootstrap in kept_masters else kept_masters[0]
    _check_control_plane(state, desired)

    # Upgrades of hosts that stay: masters one at a time (bootstrap first), then workers in batches.
    for ip in kept:
        check_version_step(recorded[ip].version, version)
    stale = [ip for ip in kept if is_upgrade(recorded[ip].version, version)]
    master_order = [ip for ip in [bootstrap, *kept_masters] if ip in stale]
    upgrades: dict[str, str] = {}
    previous = None
    for ip in dict.fromkeys(master_order):
        previous = upgrades[ip] = graph.add(
            Kind.UPGRADE_MASTER,
            ip,
            wanted[ip].roles,
            [previous],
            details=UpgradeDetails(recorded[ip].version, version),
        )
    # Changed kubeadm documents (apiServer extraArgs, certSANs...): each master that stays is
    # reconfigured in turn, after its upgrade, before new masters join.
    old_documents = (state.control_plane or {}).get("documents")
    new_documents = desired.control_plane.get("documents")
    if old_documents and new_documents and old_documents != new_documents:
        for ip in [bootstrap, *(m for m in kept_masters if m != bootstrap)]:
            previous = graph.add(
                Kind.RECONFIGURE_MASTER, ip, wanted[ip].roles, [previous, upgrades.get(ip)]
            )
    control_plane_ready = previous
    stale_workers = [ip for ip in stale if not wanted[ip].is_master]
    size = batch_size(max_unavailable, len(desired.workers))
    barrier = control_plane_ready
    for number, start in enumerate(range(0, len(stale_workers), size), start=1):
        batch = stale_workers[start : start + size]
        ids = [
            graph.add(
                Kind.UPGRADE_WORKER,
                ip,
                wanted[ip].roles,
                [barrier],
                details=UpgradeDetails(recorded[ip].version, version, batch=number),
            )
            for ip in batch
        ]
        upgrades.update(zip(batch, ids, strict=True))
        if start + size < len(stale_workers):
            barrier = graph.add(
                Kind.UPGRADE_BATCH, None, (), ids, details=BatchDetails(number, len(batch))
            )

    # Removals first known, so that a re-joined host can wait for its own removal.
    removals: dict[str, str] = {}
    removed_masters = [ip for ip in removed if recorded[ip].is_master]
    removed_masters.sort(key=lambda ip: ip == old_bootstrap)  # the bootstrap master leaves last
    for ip in removed:
        if not recorded[ip].is_master:
            removals[ip] = graph.add(
                Kind.DELETE_WORKER,
                ip,
                recorded[ip].roles,
                details=LeaveDetails(recorded[ip].version),
            )

    # Joins: new masters one at a time, new workers in parallel, both at the new version.
    previous = control_plane_ready
    for ip in [ip for ip in added if wanted[ip].is_master and ip not in rejoining]:
        previous = graph.add(
            Kind.JOIN_MASTER,
            ip,
            wanted[ip].roles,
            [previous, removals.get(ip)],
            details=_join_details(desired, ip),
        )
    masters_joined = previous
    for ip in [ip for ip in added if not wanted[ip].is_master]:
        graph.add(
            Kind.JOIN_WORKER,
            ip,
            wanted[ip].roles,
            [control_plane_ready, removals.get(ip)],
            details=_join_details(desired, ip),
        )

    # Workers reach the API through the endpoint name, mapped to the bootstrap master: when it
    # leaves, every worker that stays is moved to the new one first.
    moved = []
    if old_bootstrap in removed_masters:
        moved = [
            graph.add(
                Kind.UPDATE_ENDPOINT,
                ip,
                wanted[ip].roles,
                [masters_joined, upgrades.get(ip)],
                details=EndpointDetails(bootstrap),
            )
            for ip in kept
            if not wanted[ip].is_master
        ]

    # Masters leave one at a time, after the new ones joined; a re-joined worker waits for it.
    previous = masters_joined
    for ip in removed_masters:
        heir = bootstrap if ip == old_bootstrap else ""
        deps = [previous, *(moved if heir else ())]
        previous = removals[ip] = graph.add(
            Kind.DELETE_MASTER,
            ip,
            recorded[ip].roles,
            deps,
            details=LeaveDetails(recorded[ip].version, hands_bootstrap_to=heir),
        )
    for ip in replaced - set(rejoining):
        if recorded[ip].is_master:
            graph.depend(action_id(Kind.JOIN_WORKER, ip), removals[ip])
    for ip in rejoining:  # one at a time, each after its own leave
        previous = graph.add(
            Kind.JOIN_MASTER,
            ip,
            wanted[ip].roles,
            [previous, removals[ip]],
            details=_join_details(desired, ip),
        )

    # Same version, new content (a rebuilt image, or changed Config documents rendered into
    # it): hosts that stay get the new rootfs.
    previous_digest = (state.image or {}).get("digest")
    image_changed = previous_digest and previous_digest != desired.image.digest
    configs_changed = state.configs_digest != configs_digest(desired)
    if image_changed or configs_changed:
        reason = SyncRootfsDetails(
            previous_digest,
            desired.image.digest,
            configs="changed" if configs_changed else "",
            image=desired.image.name,
        )
        for ip in kept:
            if ip not in upgrades:  # an upgrade brings the new rootfs itself
                graph.add(Kind.SYNC_ROOTFS, ip, wanted[ip].roles, details=reason)

    # Labels, taints, env (and free-form roles) of hosts that stay.
    digests = EnvDigests()
    for ip in kept:
        old, new = recorded[ip].comparable(), desired_record(wanted[ip], key, digests)
        if old != new:
            graph.add(
                Kind.UPDATE_HOST,
                ip,
                wanted[ip].roles,
                [upgrades.get(ip)],
                details=UpdateHostDetails(tuple(explain(old, new))),
            )
    registry_rules.plan(graph, desired, state, kept)
    return bootstrap


def _check_control_plane(state: State, desired: Cluster) -> None:
    """Refuse a change that the distribution cannot make to a running cluster (the endpoint
    every node and certificate names, kubeadm's pod and service subnets, ...)."""
    recorded = dict(state.control_plane or {})
    if state.hosts:  # a cluster made before dataRoot was recorded has its rootfs at the default
        recorded.setdefault("data_root", DEFAULT_DATA_ROOT)
    changed = [
        f"{key}: {recorded[key]!r} -> {desired.control_plane.get(key)!r}"
        for key in sorted(recorded)
        if key not in CHANGEABLE
        and key in desired.control_plane
        and recorded[key] != desired.control_plane[key]
    ]
    if changed:
        raise PlanError(
            f"{desired.source or 'Clusterfile'}: the running cluster cannot change "
            f"{'; '.join(changed)} (the nodes keep them from init); keep the "
            f"recorded values, or destroy and re-create the cluster"
        )


def _plan_launch(graph: ActionGraph, desired: Cluster, state: State, bootstrap: str) -> None:
    """Run the launch commands once the cluster is up, and again when they or the image change.

    A rebuilt image or changed Configs usually change the manifests its commands apply, so they
    re-run them too: launch commands are meant to be re-runnable (`kubectl apply`).
    """
    commands = desired.launch_cmds
    digest = launch_digest(commands, desired)
    if not commands or state.launch_digest == digest:
        return
    after = [a for a in graph.ids() if actions.kind_of(a) in actions.BUILDING]
    graph.add(
        Kind.LAUNCH_APPS,
        bootstrap,
        desired.hosts[bootstrap].roles,
        after,
        details=LaunchDetails(tuple(commands), digest),
    )


def _plan_apps(graph: ActionGraph, desired: Cluster, state: State, bootstrap: str) -> None:
    """Launch each app whose content, commands or env changed (or that is new), in order, once
    the cluster is up; forget the apps of this image that are no longer launched.

    Apps launched from another image (an application image run earlier) are left alone."""
    after = [a for a in graph.ids() if actions.kind_of(a) in actions.BUILDING]
    roles = desired.hosts[bootstrap].roles
    wanted = {app.name for app in desired.apps}
    previous = None
    for name, record in sorted(state.apps.items()):
        if record.get("image") == desired.apps_from and name not in wanted:
            commands = list(desired.app_deletes.get(name, ()))
            previous = graph.add(
                Kind.REMOVE_APP,
                bootstrap,
                roles,
                after + [previous],
                key=name,
                details=RemoveAppDetails(name, tuple(commands)),
            )
    for app in desired.apps:
        recorded = state.apps.get(app.name) or {}
        if recorded.get("digest") == app.digest:
            continue
        previous = graph.add(
            Kind.LAUNCH_APP,
            bootstrap,
            roles,
            after + [previous],  # in LAUNCH order, as sealer runs them
            key=app.name,
            details=LaunchAppDetails(
                app.name,
                app.image,
                tuple(app.commands),
                app.digest,
                change="update" if recorded else "create",
            ),
        )


def _join_details(desired: Cluster, ip: str) -> NodeDetails:
    host = desired.hosts[ip]
    return NodeDetails(
        version=desired.image.version,
        role=MASTER if host.is_master else WORKER,
        labels=dict(host.labels),
        taints=tuple(host.taints),
        registry=registry_rules.joining(desired, ip),
    )
