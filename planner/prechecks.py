"""sealer check: what a host must be before it joins or changes, decided from what was read.

The checks kubeadm's preflight, k0sctl and KubeKey make before they touch a host, so that an
apply does not fail halfway on a host that could never have held a node. Pure: the facts that
executors/prechecks.py read come in, problems go out, one line each:
`HOST: CHECK: found …, want …`. Errors block a plan unless skipped (--skip-check NAME);
warnings are said and do not block.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30
MIB = 1 << 20
MASTER_MEMORY = int(1.7 * GIB)  # kubeadm's preflight: 1700 MB for a control-plane node
CLOCK_SKEW = 5.0  # seconds: certificates and etcd's leases tolerate little more

CHECKS = (
    "swap", "ports", "hostname", "clock", "memory", "disk", "ip_forward", "br_netfilter",
    "runtime",
)  # fmt: skip

# The TCP ports each runtime's node listens on, by role (the registry's port is added on the
# hosts that serve it).
PORTS = {
    "kubernetes": {"master": (6443, 2379, 2380, 10250, 10257, 10259), "node": (10250,)},
    "k3s": {"master": (6443, 2379, 2380, 10250), "node": (10250,)},
    "k0s": {"master": (6443, 2379, 2380, 8132, 9443), "node": (10250,)},
}


@dataclass(frozen=True)
class Subject:
    """One host the plan will join or change, and what was read on it."""

    ip: str
    master: bool
    joining: bool  # not a node yet: its ports, runtime, swap and memory are checked too
    serves_registry: bool
    hostname: str
    marker: str  # the sealer rootfs it holds ("" none): its ports and runtime are sealer's
    checks: dict  # executors/prechecks.py's parse()


@dataclass(frozen=True)
class Problem:
    host: str
    check: str  # one of CHECKS
    found: str
    want: str
    error: bool  # False: a warning

    @property
    def line(self) -> str:
        return f"{self.host}: {self.check}: found {self.found}, want {self.want}"


@dataclass(frozen=True)
class Context:
    """What the checks compare against: the cluster, not the host."""

    runtime: str
    registry_port: int  # 0: no registry of the cluster's own
    image_size: int  # bytes of the rootfs each host receives
    data_root: str
    others: dict[str, str]  # hostnames of the cluster's hosts not checked: ip -> name


def evaluate(subjects: list[Subject], context: Context) -> list[Problem]:
    """Every problem of every subject, hosts in the order given."""
    problems: list[Problem] = []
    names = dict(context.others)
    names.update({s.ip: s.hostname for s in subjects if s.hostname})
    for subject in subjects:
        problems += _host_problems(subject, context, names)
    return problems


def _host_problems(subject: Subject, context: Context, names: dict[str, str]) -> list[Problem]:
    facts = subject.checks
    found: list[Problem] = []

    def add(check: str, seen: str, want: str, error: bool = True) -> None:
        found.append(Problem(subject.ip, check, seen, want, error))

    # A running node is held only to what a change needs (its clock, its disk, its name):
    # swap and memory are a join's questions, so a label change is never blocked by them.
    swap = facts.get("swap_kb")
    if subject.joining and swap:
        add("swap", f"{_size(swap * 1024)} of swap on", "none (the kubelet refuses swap)",
            error=context.runtime == "kubernetes")  # fmt: skip
    # A joining host that holds this cluster's rootfs is one sealer began on (an apply cut
    # short before the state recorded it): its ports and runtime are sealer's own.
    if subject.joining and not subject.marker:
        role = "master" if subject.master else "node"
        wanted = set(PORTS.get(context.runtime, PORTS["kubernetes"])[role])
        if subject.serves_registry and context.registry_port:
            wanted.add(context.registry_port)
        taken = sorted(wanted & _ports_in_the_way(subject.ip, facts.get("listening") or ()))
        if taken:
            add("ports", f"{', '.join(map(str, taken))} in use",
                f"{', '.join(map(str, sorted(wanted)))} free for the {role}")  # fmt: skip
        runtimes = facts.get("runtimes") or []
        if runtimes:
            add("runtime", f"{', '.join(runtimes)} installed",
                "no container runtime or kubelet that sealer did not install")  # fmt: skip
    name = subject.hostname.lower()
    twins = sorted(ip for ip, other in names.items() if ip != subject.ip and other.lower() == name)
    if name and twins:
        add("hostname", f"{subject.hostname!r}, also the name of {', '.join(twins)}",
            "a name no other host of the cluster has (node names are unique)")  # fmt: skip
    skew = facts.get("clock_skew")
    if skew is not None and abs(skew) > CLOCK_SKEW:
        way = "ahead of" if skew > 0 else "behind"
        add("clock", f"{abs(skew):.0f} s {way} this machine",
            f"within {CLOCK_SKEW:g} s (certificates and etcd need agreeing clocks)")  # fmt: skip
    memory = facts.get("mem_kb")
    if subject.joining and subject.master and memory is not None and memory * 1024 < MASTER_MEMORY:
        add("memory", f"{_size(memory * 1024)}", f"at least {_size(MASTER_MEMORY)} on a master")
    free = facts.get("disk_free_kb")
    if free is not None and free * 1024 < 2 * context.image_size:
        add("disk", f"{_size(free * 1024)} free under {context.data_root}",
            f"at least {_size(2 * context.image_size)} (twice the image's "
            f"{_size(context.image_size)})")  # fmt: skip
    # A joining host gets both from sealer's init; a node that lost them has broken pods.
    if not subject.joining and facts.get("ip_forward") == "0":
        add("ip_forward", "net.ipv4.ip_forward = 0",
            "1 (pods need forwarding; something turned it off)", error=False)  # fmt: skip
    bridge = facts.get("br_netfilter")
    if context.runtime == "kubernetes" and bridge == "absent":
        add("br_netfilter", "neither the module loaded nor a module file for this kernel",
            "br_netfilter (kubeadm's preflight needs bridge-nf-call-iptables)",
            error=False)  # fmt: skip
    return found


WILDCARDS = ("0.0.0.0", "::", "127.0.0.1", "::1")


def _ports_in_the_way(ip: str, listening) -> set[int]:
    """The ports a node's components could not bind: listeners on every address, on the
    loopback, or on the host's own address (one on another address of a shared network, as
    loopback sandbox hosts have, is another host's)."""
    return {port for address, port in listening if address in WILDCARDS or address == ip}


def blocking(problems: list[Problem], skipped: frozenset[str]) -> list[Problem]:
    return [p for p in problems if p.error and p.check not in skipped]


def said(problems: list[Problem], skipped: frozenset[str]) -> list[str]:
    """The lines printed as warnings: the warnings, and the errors let through by name."""
    lines = []
    for problem in problems:
        if not problem.error:
            lines.append(problem.line)
        elif problem.check in skipped:
            lines.append(f"{problem.line} (let through: --skip-check {problem.check})")
    return lines


def unknown_checks(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name not in CHECKS]


def _size(size: float) -> str:
    if size >= GIB:
        return f"{size / GIB:.1f} GiB"
    return f"{size / MIB:.0f} MiB"
