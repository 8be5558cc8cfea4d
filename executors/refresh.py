"""Refresh: read each recorded host's facts and the cluster's own view, in parallel, read-only.

Nothing here changes a host: every command only reads (hostname, a marker file, a version,
`systemctl is-active`, `kubectl get nodes`, `kubectl get pods`, the etcd member list). A host
that cannot be read (down, timed out, refused login, changed key) is a fact with its reason,
not an error; the rest of the refresh completes, and the caller decides what an unread host
blocks.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from cluster.errors import SealerError
from cluster.model import ClusterView, HostFacts
from cluster.records import State
from executors import distribute, facts, prechecks
from executors.driver import Driver, HostError, HostKeyChanged
from executors.fanout import fan_out
from executors.runtimes import runtime_for
from executors.runtimes.base import Runtime, internal_ip, is_ready

SYSTEM_LABEL_PREFIXES = (
    "kubernetes.io/",
    "node-role.kubernetes.io/",
    "beta.kubernetes.io/",
    "node.kubernetes.io/",
)


class _ReadOps:
    """The NodeOps a runtime needs for cluster-wide reads, from one master."""

    def __init__(self, driver: Driver, source: str):
        self.driver = driver
        self.bootstrap = source

    def run(self, ip, command, *, stdin=b"", check=True, secrets=(), timeout=None):
        return self.driver.reader(ip).run(
            command, stdin=stdin, check=check, secrets=secrets, timeout=timeout
        )

    def address(self, ip: str) -> str:
        return ip


def refresh(
    state: State, driver: Driver, parallelism: int = 64, checks_root: str = ""
) -> tuple[dict, ClusterView]:
    """Facts of every recorded host (by IP) and the cluster view; parallelism hosts at once
    at most (fewer when the open-file limit says so). checks_root: also what `sealer check`
    reads, with the free space under this folder (the Clusterfile's dataRoot)."""
    runtime = runtime_for(state.runtime)
    data_root = (state.control_plane or {}).get("data_root") or distribute.DATA_ROOT
    fact = facts.host_state(distribute.rootfs_dir(state.cluster, data_root), runtime.probe)
    if checks_root:
        fact = prechecks.with_checks(fact, checks_root)
    ips = list(state.hosts)
    with ThreadPoolExecutor(fan_out(len(ips), parallelism) + 1) as pool:
        # The cluster's view is read from the bootstrap master while the hosts answer.
        early_view = pool.submit(_view_from, state.bootstrap_master, driver, runtime)
        answers = pool.map(lambda ip: _host_facts(driver, ip, fact), ips)
        host_facts = dict(zip(ips, answers, strict=True))
        view = early_view.result()
    if view.source is None:  # the bootstrap master did not answer: try the others
        view = _cluster_view(state, host_facts, driver, runtime, first_error=view.error)
    return host_facts, view


def _host_facts(driver: Driver, ip: str, fact: facts.Fact[dict]) -> HostFacts:
    remote = driver.reader(ip)
    try:
        values = facts.read(remote, fact)
        key = remote.host_key()
        if hasattr(remote, "confirm_key"):  # a kept connection: its handshake is not this run's
            key = remote.confirm_key(values.get("host_keys") or ())
    except HostKeyChanged as e:  # refused before login: what it shows is all there is to know
        return HostFacts(
            ip, reachable=False, host_key=e.seen, error=e.message, reason="host_key_changed"
        )
    except HostError as e:  # reached but a read failed: still nothing known about it
        return HostFacts(ip, reachable=False, error=e.message, reason=e.reason or "unreadable")
    return facts.host_facts(ip, key, values)


def _view_from(source: str | None, driver: Driver, runtime: Runtime) -> ClusterView:
    if source is None:
        return ClusterView(source=None, error="no bootstrap master")
    ops = _ReadOps(driver, source)
    try:
        nodes = {name: _node_summary(item) for name, item in runtime.nodes(ops).items()}
        etcd = frozenset(runtime.etcd_members(ops))
    except (SealerError, ValueError, KeyError) as e:
        return ClusterView(source=None, error=f"{source}: {e}")
    try:
        pull_failures = tuple(runtime.image_pull_failures(ops))
    except SealerError:  # the nodes were read: the pods are a detail, not the view
        pull_failures = None
    return ClusterView(source=source, nodes=nodes, etcd=etcd, pull_failures=pull_failures)


def _cluster_view(
    state: State, host_facts: dict, driver: Driver, runtime: Runtime, first_error: str
) -> ClusterView:
    errors = [first_error]
    for source in state.masters:
        if source == state.bootstrap_master or not host_facts[source].reachable:
            continue
        view = _view_from(source, driver, runtime)
        if view.source:
            return view
        errors.append(view.error)
    return ClusterView(source=None, error="; ".join(errors) or "no master is reachable")


def _node_summary(item: dict) -> dict:
    labels = {
        k: v
        for k, v in item["metadata"].get("labels", {}).items()
        if not k.startswith(SYSTEM_LABEL_PREFIXES)
    }
    taints = []
    for t in item["spec"].get("taints", []) or []:
        value = f"={t['value']}" if t.get("value") else ""
        taints.append(f"{t['key']}{value}:{t['effect']}")
    return {
        "address": internal_ip(item),
        "ready": is_ready(item),
        "version": item["status"].get("nodeInfo", {}).get("kubeletVersion", ""),
        "labels": labels,
        "taints": sorted(taints),
    }


CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def discover(driver: Driver, source: str, runtime_name: str) -> dict[str, dict]:
    """A running cluster as one of its masters sees it, read-only: hostname -> {address,
    master, version, labels, taints}. k0s controllers are etcd members, not nodes: they come
    from the member list (their peer address)."""
    runtime = runtime_for(runtime_name)
    ops = _ReadOps(driver, source)
    found = {}
    for name, item in runtime.nodes(ops).items():
        summary = _node_summary(item)
        labels = item["metadata"].get("labels", {})
        summary["master"] = any(label in labels for label in CONTROL_PLANE_LABELS)
        found[name] = summary
    if runtime_name == "k0s":
        members = json.loads(ops.run(source, "k0s etcd member-list").stdout)["members"]
        for name, peer in members.items():
            address = urlsplit(peer).hostname or ""
            entry = found.setdefault(name, {"labels": {}, "taints": [], "version": ""})
            entry.update(address=address, master=True)
    return found
