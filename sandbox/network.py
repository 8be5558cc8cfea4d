"""A network of their own for sandbox hosts (`sealer sandbox up --net netns`).

Each host gets its own network namespace (its own 127.0.0.1, ports and routes), joined by a
veth pair to one bridge on this machine. Addresses come from the benchmarking range
198.18.0.0/15 (RFC 2544): this machine is 198.18.0.1 on the bridge, host N is 198.18.0.1 + N.
The bridge holds the whole /15, so every packet for the range stays on it and none can leave
this machine. Links can be shaped with tc (a tbf rate; netem where a delay is asked for): each
host's both directions, and the operator's side of the bridge.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess

from cluster.errors import SealerError

BRIDGE = "sealer-br0"
NETWORK = ipaddress.ip_network("198.18.0.0/15")
OPERATOR = NETWORK[1]
MODES = ("loopback", "netns")
RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
DELAY = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")


class NetworkError(SealerError):
    pass


def mode() -> str:
    """$SEALER_SANDBOX_NET: loopback (127.0.1.N, the machine's network) or netns."""
    chosen = os.environ.get("SEALER_SANDBOX_NET") or "loopback"
    if chosen not in MODES:
        raise NetworkError(f"SEALER_SANDBOX_NET={chosen!r}: give one of {', '.join(MODES)}")
    return chosen


def host_address(number: int) -> str:
    return str(NETWORK[1 + number])


def _ip(*args: str, pid: int | None = None) -> subprocess.CompletedProcess:
    command = ["ip", *args] if pid is None else ["nsenter", "-t", str(pid), "-n", "ip", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise NetworkError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def ensure_bridge() -> None:
    """The bridge with this machine's address on it (idempotent)."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        return
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{OPERATOR}/{NETWORK.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


NEIGHBOUR_LIMITS = "/proc/sys/net/ipv4/neigh/default/gc_thresh"  # + 2 (soft), 3 (hard)


def make_room_for(hosts: int, limits: str = NEIGHBOUR_LIMITS) -> None:
    """Raise the kernel's ARP table limits (one table for every network namespace) so that
    the hosts can all reach each other: this machine and a master each talk to every host,
    every host to both, about 4 entries per host. At the default hard limit (1,024) a fleet of
    a few hundred hosts gets "No route to host". Limits are only ever raised, never lowered."""
    wanted = {2: 4 * hosts + 256, 3: 8 * hosts + 512}
    for which, least in wanted.items():
        path = f"{limits}{which}"
        with open(path) as f:
            current = int(f.read().split()[0])
        if current >= least:
            continue
        try:
            with open(path, "w") as f:
                f.write(str(least))
        except OSError as e:
            raise NetworkError(
                f"{path} is {current}, {hosts} netns hosts need {least} and it cannot be "
                f"raised here ({e.strerror}); start fewer hosts or raise it first"
            ) from None


def remove_bridge() -> None:
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def link_name(number: int) -> str:
    return f"sbx{number}"


def attach(number: int, pid: int) -> None:
    """A veth pair: this machine's end on the bridge, the other the host's eth0."""
    ours, theirs = link_name(number), f"sbx{number}p"
    subprocess.run(["ip", "link", "del", ours], capture_output=True)  # a stale one
    _ip("link", "add", ours, "type", "veth", "peer", "name", theirs)
    _ip("link", "set", theirs, "netns", str(pid), "name", "eth0")
    _ip("link", "set", ours, "master", BRIDGE, "up")


def set_link(number: int, up: bool) -> None:
    _ip("link", "set", link_name(number), "up" if up else "down")


def configure_inside(address: str) -> None:
    """In the host's namespace, once eth0 is there: loopback and the host's address."""
    _ip("link", "set", "lo", "up")
    _ip("addr", "add", f"{address}/{NETWORK.prefixlen}", "dev", "eth0")
    _ip("link", "set", "eth0", "up")


def check_shape(rate: str | None, delay: str | None) -> None:
    if rate and not RATE.match(rate):
        raise NetworkError(f"--rate {rate!r}: give tc's form, e.g. 100mbit or 1gbit")
    if delay and not DELAY.match(delay):
        raise NetworkError(f"--delay {delay!r}: give tc's form, e.g. 1ms")


def shape(device: str, rate: str | None, delay: str | None, pid: int | None = None) -> None:
    """A device's egress: a token bucket (tbf) at the rate, the link's bandwidth; with a delay,
    netem does both (kernels without netem, like this one's VM, refuse a delay clearly)."""
    if not rate and not delay:
        return
    check_shape(rate, delay)
    if delay:
        args = ["netem", "limit", "100000", "delay", delay, *(["rate", rate] if rate else [])]
    else:  # a burst above a GSO segment (64 KiB): veth hands the qdisc whole segments
        args = ["tbf", "rate", rate, "burst", "256kb", "latency", "100ms"]
    command = ["tc", "qdisc", "replace", "dev", device, "root", *args]
    if pid is not None:
        command = ["nsenter", "-t", str(pid), "-n", *command]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        why = result.stderr.strip()
        if delay and "unknown" in why.lower():
            why = "this kernel has no netem qdisc, so links can get a --rate but no --delay"
        raise NetworkError(f"{' '.join(command)}: {why}")


def shape_host(number: int, pid: int, rate: str | None, delay: str | None) -> None:
    """Both directions of host N's link: its download (our veth end), its upload (eth0)."""
    shape(link_name(number), rate, delay)
    shape("eth0", rate, delay, pid=pid)


def describe_link(number: int) -> str:
    """What tc says of the host's link, e.g. 'tbf rate 100Mbit' ('' unshaped)."""
    result = subprocess.run(
        ["tc", "qdisc", "show", "dev", link_name(number)], capture_output=True, text=True
    )
    for line in result.stdout.splitlines():
        kind = line.split()[1] if len(line.split()) > 1 else ""
        if kind in ("netem", "tbf"):
            found = re.findall(r"\b(delay|rate) (\S+)", line)
            return kind + " " + " ".join(f"{k} {v}" for k, v in found)
    return ""
