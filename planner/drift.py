"""Drift: compare the state with what a refresh read. Pure: no I/O.

find_drift() lists the findings; accept_drift() returns the state as the live cluster is, so
that planning against it brings the cluster back to the Clusterfile (a missing node is joined
again, a drifted version is upgraded, changed labels or taints are set again).
"""

from __future__ import annotations

import ipaddress
import time

from cluster.model import UNREAD_REASONS, ClusterView, Finding, HostFacts, Plan
from cluster.records import HostRecord, State


def _is_node(record: HostRecord, runtime: str) -> bool:
    # k0s controllers are not Kubernetes nodes; every other host is.
    return not (runtime == "k0s" and record.is_master)


CERT_WARNING_SECONDS = 30 * 86400  # a certificate closer than this to its end is drift


def find_drift(
    state: State, facts: dict[str, HostFacts], view: ClusterView, now: float | None = None
) -> list[Finding]:
    """`now` (Unix time) dates certificates; by default the time of the call."""
    now = time.time() if now is None else now
    findings: list[Finding] = []
    nodes = view.nodes
    name_at = {n["address"]: name for name, n in (nodes or {}).items()}
    known_names: set[str] = set()
    serving = sorted(h for h, r in state.hosts.items() if r.registry_served)  # the registry's
    for ip, record in state.hosts.items():
        fact = facts.get(ip)
        name = record.hostname or name_at.get(ip) or ip
        known_names.add(name)
        if fact is not None and not fact.reachable:
            findings.append(_unread_finding(ip, record, fact))
        elif fact is not None:
            if record.host_key and fact.host_key and fact.host_key != record.host_key:
                findings.append(Finding("host_key_changed", ip, record.host_key, fact.host_key))
            if fact.version and fact.version != record.version:
                findings.append(Finding("version_mismatch", ip, record.version, fact.version))
            if fact.cert_expires is not None and fact.cert_expires - now < CERT_WARNING_SECONDS:
                ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fact.cert_expires))
                findings.append(Finding("cert_expiring", ip, "30 days or more", ends))
            live = fact.host_aliases
            if live is not None and sorted(live) != sorted(record.host_aliases):
                findings.append(
                    Finding("host_aliases_changed", ip, list(record.host_aliases), list(live))
                )
            findings += _registry_findings(ip, record, fact, serving)
            stale = _endpoint_problem(state, ip, record, fact.endpoint)
            if stale:
                findings.append(Finding("endpoint_stale", ip, stale, fact.endpoint or None))
        if nodes is None or not _is_node(record, state.runtime):
            continue
        node = nodes.get(name) or nodes.get(name_at.get(ip, ""))
        if node is None:
            findings.append(Finding("node_missing", ip, name, None))
            continue
        if not node["ready"]:
            findings.append(Finding("node_not_ready", ip, "Ready", "NotReady"))
        reported = {f.host for f in findings if f.kind == "version_mismatch"}
        if node["version"] and node["version"] != record.version and ip not in reported:
            findings.append(Finding("version_mismatch", ip, record.version, node["version"]))
        if node["labels"] != record.labels:
            findings.append(Finding("labels_changed", ip, dict(record.labels), node["labels"]))
        wanted_taints = sorted(t for t in record.taints if not t.endswith("-"))
        if node["taints"] != wanted_taints:
            findings.append(Finding("taints_changed", ip, wanted_taints, node["taints"]))
    for name, node in sorted((nodes or {}).items()):
        if name not in known_names and node["address"] not in state.hosts:
            findings.append(Finding("unexpected_node", name, None, node["address"]))
    by_hostname = {r.hostname: ip for ip, r in state.hosts.items() if r.hostname}
    for failure in view.pull_failures or ():  # on the node's host, by address when known
        address = ((nodes or {}).get(failure["node"]) or {}).get("address", "")
        if address not in state.hosts:
            address = ""
        host = by_hostname.get(failure["node"]) or address or failure["node"]
        detail = {k: failure[k] for k in ("pod", "container", "image", "reason", "message")}
        findings.append(Finding("image_pull_failed", host, "image pulled", detail))
    if view.etcd is not None:
        masters = {state.hosts[ip].hostname or ip: ip for ip in state.masters}
        for name, ip in sorted(masters.items()):
            if name not in view.etcd:
                findings.append(Finding("etcd_member_missing", ip, name, None))
        for member in sorted(view.etcd - set(masters)):
            findings.append(Finding("etcd_member_unexpected", member, None, member))
    return findings


def _unread_finding(ip: str, record: HostRecord, fact: HostFacts) -> Finding:
    """Each reason its own kind: a changed key says both fingerprints."""
    if fact.reason == "host_key_changed":
        return Finding("host_key_changed", ip, record.host_key, fact.host_key)
    if fact.reason == "auth_failed":
        return Finding("auth_failed", ip, "login", fact.error)
    return Finding("host_unreachable", ip, "reachable", fact.error)


def unread_hosts(state: State, facts: dict[str, HostFacts]) -> dict[str, str]:
    """The recorded hosts a refresh could not read: ip -> why, in words, by address."""
    unread = {}
    for ip, fact in sorted(facts.items(), key=lambda item: ipaddress.ip_address(item[0])):
        if fact.reachable:
            continue
        why = UNREAD_REASONS.get(fact.reason, UNREAD_REASONS["unreadable"])
        record = state.hosts.get(ip)
        if fact.reason == "host_key_changed" and record is not None:
            detail = (
                f"the state pinned {record.host_key}, the host now shows {fact.host_key}; if it "
                f"was reinstalled on purpose: sealer state forget-host-key {ip}"
            )
        elif fact.reason == "bastion":  # "bastion ADDRESS:PORT down: why" says it all
            unread[ip] = fact.error
            continue
        else:
            detail = fact.error
        unread[ip] = f"{why} ({detail})" if detail else why
    return unread


def blocking_unread(
    wanted_hosts: frozenset[str], plan: Plan, unread: dict[str, str]
) -> dict[str, str]:
    """The unread hosts a plan cannot go ahead without: every one that stays in the Clusterfile
    (the plan cannot say what it would do to them); with --target, those the cut plan acts on,
    and the bootstrap master whose API every action uses. Hosts leaving the Clusterfile never
    block: removing a dead host cleans what it can from the masters."""
    staying = {ip: why for ip, why in unread.items() if ip in wanted_hosts}
    if not plan.targets:
        return staying
    needed = {a.host for a in plan.actions}
    if plan.actions and plan.bootstrap_master:
        needed.add(plan.bootstrap_master)
    return {ip: why for ip, why in staying.items() if ip in needed}


def _registry_findings(ip: str, record: HostRecord, fact: HostFacts, serving: list) -> list:
    """A serving host whose registry process is gone; a host whose hosts file no longer
    sends the registry's domain to the serving masters (sorted)."""
    found = []
    if record.registry_served and fact.registry_running is False:
        found.append(Finding("registry_unreachable", ip, "running", "stopped"))
    live = fact.registry_addresses
    if record.registry and serving and live is not None and sorted(live) != serving:
        found.append(Finding("registry_config_changed", ip, serving, sorted(live)))
    return found


def _endpoint_problem(state: State, ip: str, record: HostRecord, mapped: str | None) -> str:
    """What the host's endpoint mapping should be, when it is not: a master serves itself, a
    worker goes to a master. "" when it is right (or was not read)."""
    if mapped is None:
        return ""
    if record.is_master:
        return "" if mapped == ip else ip
    return "" if mapped in state.masters else "a master: " + ", ".join(state.masters)


def accept_drift(state: State, findings: list[Finding]) -> State:
    """The state as the refresh found the cluster."""
    hosts = dict(state.hosts)
    for f in findings:
        record = hosts.get(f.host)
        if record is None:
            continue
        if f.kind == "node_missing" and f.host != state.bootstrap_master:
            del hosts[f.host]  # not in the cluster any more: planning joins it again
        elif f.kind == "version_mismatch":
            hosts[f.host] = record.with_fields(version=f.actual)
        elif f.kind == "labels_changed":
            hosts[f.host] = record.with_fields(labels=dict(f.actual))
        elif f.kind == "taints_changed":
            hosts[f.host] = record.with_fields(taints=list(f.actual))
        elif f.kind == "host_aliases_changed":  # planning writes them again (update_host)
            hosts[f.host] = record.with_fields(host_aliases=list(f.actual))
        elif f.kind == "registry_unreachable":  # planning serves it again
            hosts[f.host] = record.with_fields(registry_served="")
        elif f.kind == "registry_config_changed":  # planning configures the host again
            hosts[f.host] = record.with_fields(registry="")
    return state.with_hosts(hosts)
