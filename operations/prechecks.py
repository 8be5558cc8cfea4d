"""Check the hosts a plan will join or change before any is touched (sealer check, and every
plan and apply): the hosts about to join are read here, once each; the recorded ones were read
by the refresh in its own round trip (executors/prechecks.py); planner/prechecks.py decides.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cluster.actions import Kind
from cluster.errors import SealerError
from cluster.model import Cluster, Plan
from cluster.names import DEFAULT_DATA_ROOT
from cluster.records import State
from operations.common import SSHSettings, ssh_driver
from planner import prechecks


class ChecksFailed(SealerError):
    """Hosts that cannot take what the plan would do to them (each line: HOST: CHECK: ...)."""

    def __init__(self, problems: list[prechecks.Problem]):
        lines = [p.line for p in problems]
        self.lines = lines
        names = sorted({p.check for p in problems})
        super().__init__(
            f"cannot plan: {len(lines)} host check(s) failed:\n"
            + "".join(f"  {line}\n" for line in lines)
            + f"Fix the hosts, or let a check through: --skip-check {' --skip-check '.join(names)}"
        )  # fmt: skip


@dataclass(frozen=True)
class Joining:
    """What the hosts about to join said (read once; the plan's arch check uses it too)."""

    found: dict[str, dict] = field(default_factory=dict)  # ip -> joining() facts
    unread: dict[str, str] = field(default_factory=dict)  # ip -> why
    rootfs: str = ""  # the folder whose marker was read

    @property
    def seen(self) -> dict:
        """ip -> executors.facts.Seen: what a preparation would ask the host first."""
        from executors.facts import Seen

        return {
            ip: Seen(f["hostname"], f.get("marker", ""), f["machine"])
            for ip, f in self.found.items()
            if f.get("hostname") and f.get("machine")
        }

    @property
    def machines(self) -> dict[str, str]:
        return {ip: f["machine"] for ip, f in self.found.items() if f.get("machine")}


@dataclass(frozen=True)
class Checked:
    problems: list[prechecks.Problem]
    skipped: frozenset[str]
    hosts: list[str]  # the hosts checked

    @property
    def blocking(self) -> list[prechecks.Problem]:
        return prechecks.blocking(self.problems, self.skipped)

    @property
    def warnings(self) -> list[str]:
        return prechecks.said(self.problems, self.skipped)

    def raise_if_blocking(self, listener) -> None:
        """Errors end the operation (its warnings said first: the whole picture at once)."""
        if self.blocking:
            for line in self.warnings:
                listener.warning(line)
            raise ChecksFailed(self.blocking)


# The actions that install or replace what runs on a node: only their hosts are checked (a
# label, an app or a registry setting needs nothing of the host's system).
CHANGES_THE_NODE = frozenset({
    Kind.INIT_CLUSTER, Kind.JOIN_MASTER, Kind.JOIN_WORKER, Kind.UPGRADE_MASTER,
    Kind.UPGRADE_WORKER, Kind.RECONFIGURE_MASTER, Kind.SYNC_ROOTFS, Kind.SERVE_REGISTRY,
})  # fmt: skip


def check_names(skip: tuple[str, ...]) -> frozenset[str]:
    unknown = prechecks.unknown_checks(skip)
    if unknown:
        raise SealerError(
            f"--skip-check {unknown[0]}: no such check; the checks are "
            f"{', '.join(prechecks.CHECKS)}"
        )
    return frozenset(skip)


def data_root(cluster: Cluster, state: State) -> str:
    return (
        (cluster.control_plane or {}).get("data_root")
        or (state.control_plane or {}).get("data_root")
        or DEFAULT_DATA_ROOT
    )


def joining_hosts(cluster: Cluster, state: State) -> list[str]:
    """The Clusterfile's hosts the state does not hold: the ones read_joining asks."""
    return sorted(set(cluster.hosts) - set(state.hosts))


def read_joining(cluster: Cluster, state: State, ssh: SSHSettings, driver=None) -> Joining:
    """The Clusterfile's hosts the state does not hold, asked in parallel, one command each.
    driver: the run's connections, kept open for the actions that follow (an apply: a
    thousand joining hosts are a thousand handshakes, paid once); None: our own, closed."""
    from executors import distribute
    from executors import prechecks as probes
    from executors.driver import HostError
    from executors.facts import read

    ips = joining_hosts(cluster, state)
    if not ips:
        return Joining()
    root = data_root(cluster, state)
    rootfs = distribute.rootfs_dir(cluster.name, root)
    fact = probes.joining(rootfs, root)
    own = driver is None
    if own:
        driver = ssh_driver(cluster, state, ssh, pin_keys=True)
    found, unread = {}, {}

    def ask(ip: str) -> None:
        try:
            found[ip] = read(driver.host(ip), fact)
        except HostError as e:
            unread[ip] = e.message

    try:
        with ThreadPoolExecutor(min(len(ips), 64)) as pool:
            list(pool.map(ask, ips))
    finally:
        if own:
            driver.close()
    return Joining(found, unread, rootfs)


def evaluate(
    cluster: Cluster,
    state: State,
    plan: Plan,
    recorded: dict[str, dict],
    joining: Joining,
    skip: frozenset[str],
) -> Checked:
    """The checks of the hosts plan joins or changes (CHANGES_THE_NODE). recorded: ip ->
    {hostname, checks} as the refresh read the recorded hosts."""
    acted_on = {
        a.host for a in plan.actions if a.kind in CHANGES_THE_NODE and a.host in cluster.hosts
    }
    masters = [ip for ip, h in cluster.hosts.items() if h.is_master]
    first = state.bootstrap_master if state.bootstrap_master in masters else None
    order = [first, *[m for m in masters if m != first]] if first else masters
    serving = set(cluster.registry.serving_hosts(order)) if cluster.registry else set()
    subjects = []
    for ip in sorted(acted_on):
        read = joining.found.get(ip) if ip not in state.hosts else recorded.get(ip)
        if not read or read.get("checks") is None:
            continue  # unread: the refresh (recorded) or the apply itself (joining) says why
        subjects.append(
            prechecks.Subject(
                ip=ip,
                master=cluster.hosts[ip].is_master,
                joining=ip not in state.hosts,
                serves_registry=ip in serving,
                hostname=read.get("hostname", ""),
                marker=read.get("marker", ""),
                checks=read["checks"],
            )
        )
    others = {ip: r.hostname for ip, r in state.hosts.items() if r.hostname and ip in cluster.hosts}
    others.update({ip: f["hostname"] for ip, f in joining.found.items() if f.get("hostname")})
    context = prechecks.Context(
        runtime=cluster.image.runtime if cluster.image else state.runtime,
        registry_port=cluster.registry.port if cluster.registry and serving else 0,
        # the image's files are walked only when a host is to be judged against them
        image_size=_rootfs_size(cluster.image.rootfs) if cluster.image and subjects else 0,
        data_root=data_root(cluster, state),
        others={ip: name for ip, name in others.items() if ip not in acted_on},
    )
    problems = prechecks.evaluate(subjects, context)
    problems += [
        prechecks.Problem(ip, "reach", f"no answer ({why})", "an answer to sealer check", False)
        for ip, why in sorted(joining.unread.items())
        if ip in acted_on
    ]
    return Checked(problems, skip, [s.ip for s in subjects])


def _rootfs_size(folder: str) -> int:
    total = 0
    for path, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                continue
    return total
