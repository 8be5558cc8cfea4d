"""Refresh: read the live hosts and compare them with the state (plan, apply, drift use it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.errors import UnreadHosts
from cluster.model import Cluster, Finding, Plan
from cluster.records import State
from operations.common import SSHSettings, ssh_driver
from planner.drift import accept_drift, blocking_unread, find_drift, unread_hosts


@dataclass(frozen=True)
class Refreshed:
    findings: list[Finding] = field(default_factory=list)
    live: State | None = None  # the state as the live cluster is (drift accepted)
    warnings: list[str] = field(default_factory=list)
    cert_expiry: dict[str, float] = field(default_factory=dict)  # master -> notAfter
    unread: dict[str, str] = field(default_factory=dict)  # hosts not read -> why, in words
    machines: dict[str, str] = field(default_factory=dict)  # host -> uname -m, as read
    jump_keys: dict[str, str] = field(default_factory=dict)  # bastions met unpinned -> key
    checks: dict[str, dict] = field(default_factory=dict)  # host -> {hostname, checks} read

    def check_readable(self, cluster: Cluster, plan: Plan, joining_unread=None) -> None:
        """Raise UnreadHosts when the plan needs a host the refresh could not read (naming
        the hosts about to join that did not answer either, joining_unread: ip -> why)."""
        kept = frozenset() if plan.destroy else frozenset(cluster.hosts)  # destroy keeps none
        blocking = blocking_unread(kept, plan, self.unread)
        if blocking:
            raise UnreadHosts(blocking, self.findings, joining_unread)


def refresh_state(
    cluster: Cluster,
    state: State,
    ssh: SSHSettings,
    enabled: bool = True,
    parallelism: int = 20,
    checks_root: str = "",
) -> Refreshed:
    """What the hosts say. Not enabled, or no host recorded: nothing found, the state as is.
    checks_root: also read what `sealer check` needs (free space under this folder)."""
    if not enabled or not state.hosts:
        return Refreshed(live=state)
    from executors.refresh import refresh  # late: a plan without hosts never loads SSH

    driver = ssh_driver(cluster, state, ssh, pin_keys=True)  # no password to a changed host
    try:
        facts, view = refresh(state, driver, max(parallelism, 64), checks_root)
        gateways = getattr(driver, "gateways", None)  # test doubles have none
        met = gateways.seen if gateways else {}
    finally:
        driver.close()
    new_jumps = {name: key for name, key in met.items() if name not in state.jump_keys}
    warnings = [] if view.source else [f"could not read the cluster's own view: {view.error}"]
    findings = find_drift(state, facts, view)
    expiry = {ip: f.cert_expires for ip, f in facts.items() if f.cert_expires is not None}
    unread = unread_hosts(state, facts)
    machines = {ip: f.machine for ip, f in facts.items() if f.machine}
    live = accept_drift(state, findings)
    checks = {
        ip: {"hostname": f.hostname, "checks": f.checks}
        for ip, f in facts.items()
        if f.checks is not None
    }
    return Refreshed(findings, live, warnings, expiry, unread, machines, new_jumps, checks)
