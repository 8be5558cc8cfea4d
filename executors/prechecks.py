"""What a host must be before it becomes a node, read without changing it (sealer check).

One bash fragment, mostly builtins, that the refresh appends to its own questions (recorded
hosts: no second round trip) and that hosts about to join are asked alone. Each answer is a
KEY=VALUE line, parsed here by a pure function (tests/test_prechecks.py); planner/prechecks.py
says what the answers mean.
"""

from __future__ import annotations

import ipaddress
import shlex
import time

from executors import facts

# programs whose presence means a container runtime or a kubelet is installed already
RUNTIME_PROGRAMS = ("dockerd", "containerd", "crio", "podman", "kubelet", "k3s", "k0s")


def probe(data_root: str) -> str:
    """The fragment: swap, listening TCP ports, memory, the clock, free space under
    data_root (its nearest existing folder), ip_forward, br_netfilter, runtimes found."""
    root = shlex.quote(data_root)
    programs = " ".join(RUNTIME_PROGRAMS)
    return (
        # /proc/swaps: a header, then one line per swap area (its size in KiB, 3rd column)
        "sw=0; { read -r _; while read -r _ _ size _; do sw=$((sw+size)); done; } "
        "2>/dev/null < /proc/swaps; echo pc_swap_kb=$sw; "
        # listening sockets: state 0A, their local ADDRESS:PORT in hex
        "lp=; for f in /proc/net/tcp /proc/net/tcp6; do "
        'while read -r _ local _ st _; do [ "$st" = 0A ] && lp="$lp $local"; '
        'done 2>/dev/null < $f; done; echo "pc_listening=$lp"; '
        'mt=; while read -r k v _; do [ "$k" = MemTotal: ] && mt=$v; done '
        "2>/dev/null < /proc/meminfo; echo pc_mem_kb=$mt; "
        "echo pc_clock=$(date +%s); "
        f'd={root}; while [ ! -d "$d" ]; do d=${{d%/*}}; d=${{d:-/}}; done; '
        'echo pc_disk_free_kb=$(df -Pk "$d" 2>/dev/null | { read -r _; read -r _ _ _ a _; '
        "echo $a; }); "
        "f=; read -r f 2>/dev/null < /proc/sys/net/ipv4/ip_forward; echo pc_ip_forward=$f; "
        # loaded, or a module file modprobe would find (sealer's init loads it), or neither
        "b=absent; for k in /lib/modules/$(uname -r)/kernel/net/bridge/br_netfilter.ko*; do "
        '[ -e "$k" ] && b=available; done; '
        "[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && b=loaded; "
        "echo pc_br_netfilter=$b; "
        f'rt=; for p in {programs}; do c=$(command -v "$p") && rt="$rt $c"; done; '
        'echo "pc_runtimes=$rt"; '
    )


def parse(values: dict[str, str], read_at: float) -> dict:
    """The probe's KEY=VALUE lines (already split) -> the facts planner/prechecks.py checks.
    read_at: the operator's clock when the answer arrived (the skew is the difference)."""

    def number(key: str) -> int | None:
        text = values.get(key, "").strip()
        return int(text) if text.isdigit() else None

    listening = set()
    for word in values.get("pc_listening", "").split():
        found = _socket(word)
        if found:
            listening.add(found)
    clock = number("pc_clock")
    return {
        "swap_kb": number("pc_swap_kb"),
        "listening": sorted(listening),  # (address, port)
        "mem_kb": number("pc_mem_kb"),
        "clock_skew": None if clock is None else clock - read_at,
        "disk_free_kb": number("pc_disk_free_kb"),
        "ip_forward": values.get("pc_ip_forward", "").strip(),
        "br_netfilter": values.get("pc_br_netfilter", "").strip(),  # loaded|available|absent
        "runtimes": values.get("pc_runtimes", "").split(),
    }


def _socket(word: str) -> tuple[str, int] | None:
    """/proc/net/tcp's local address, HEXADDR:HEXPORT (the address in the kernel's byte
    order: 32-bit words, little-endian on the machines sealer meets) -> (address, port)."""
    address, _, port = word.partition(":")
    try:
        raw = bytes.fromhex(address)
        number = int(port, 16)
    except ValueError:
        return None
    if len(raw) not in (4, 16):
        return None
    native = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(native)), number


def joining(rootfs: str, data_root: str) -> facts.Fact[dict]:
    """A host about to join, asked alone: its name, machine, the rootfs it holds, the probe."""
    command = facts.identity_lines(rootfs) + probe(data_root) + "true"

    def parsed(out: str) -> dict:
        values = facts.key_values(out)
        return {
            "hostname": values.get("hostname", ""),
            "machine": values.get("machine", ""),
            "marker": values.get("marker", ""),
            "checks": parse(values, time.time()),
        }

    return facts.Fact(command, parsed)


def with_checks(fact: facts.Fact[dict], data_root: str) -> facts.Fact[dict]:
    """A refresh's own question (facts.host_state) with the probe asked in the same command."""

    def parsed(out: str) -> dict:
        return {**fact.parse(out), "checks": parse(facts.key_values(out), time.time())}

    return facts.Fact(f"{fact.command}; {probe(data_root)}true", parsed)
