"""Facts: read-only questions to a host, each one command and a pure parser of its output.

Apply (before copying a rootfs) and refresh (drift) ask their questions through these, so a
host is read the same way everywhere, and every parser is tested on recorded outputs
(tests/test_facts.py) without a host.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cluster.model import HostFacts
from executors import endpoint, hostsfile

HOST_ALIASES_MARK = "# sealer: hostAliases"  # the hosts-file lines spec.hostAliases makes
REGISTRY_MARK = "# sealer: registry"  # the hosts-file lines sending the registry's domain
MARKER = ".sealer-digest"  # in the rootfs folder on a host: which rootfs it holds

T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    command: str  # read-only: never changes the host
    parse: Callable[[str], T]


def read(remote, fact: Fact[T]) -> T:
    """Ask a host (an executors.driver.Remote) one fact."""
    return fact.parse(remote.run(fact.command).stdout)


# ---- the host's name (a node's name, unless the runtime is told otherwise) ----


def hostname() -> Fact[str]:
    return Fact("hostname", lambda out: out.strip().split("\n", 1)[0].strip())


# ---- before a copy: the host's name and the rootfs it already holds ----


def _marker(rootfs: str) -> str:
    return shlex.quote(f"{rootfs}/{MARKER}")


@dataclass(frozen=True)
class Seen:
    """A host as a preparation finds it: its name, the rootfs it holds, its machine."""

    name: str
    marker: str  # "" on a host that holds no rootfs yet
    machine: str = ""  # uname -m: x86_64, aarch64, ...


def name_and_marker(rootfs: str) -> Fact[Seen]:
    return Fact(
        f"hostname; uname -m; cat {_marker(rootfs)} 2>/dev/null; true", parse_name_and_marker
    )


def parse_name_and_marker(out: str) -> Seen:
    lines = [line.strip() for line in out.split("\n")] + ["", "", ""]
    return Seen(lines[0], lines[2], lines[1])


def machine() -> Fact[str]:
    """The host's architecture as the kernel names it (uname -m)."""
    return Fact("uname -m", lambda out: out.strip().split("\n", 1)[0].strip())


# ---- refresh: name, marker, installed version, running services, in one round trip ----


@dataclass(frozen=True)
class RuntimeProbe:
    """What a runtime tells the host facts: how to read its version and which units it runs."""

    version_command: str
    service_units: tuple[str, ...]
    parse_version: Callable[[str], str | None]
    cert_file: str = ""  # the API server's certificate on a master, read for its expiry


def host_state(rootfs: str, probe: RuntimeProbe) -> Fact[dict]:
    """One bash script asking everything a refresh needs. Mostly builtins (read, case, a loop
    over the hosts file): a drift of a thousand hosts pays every process it starts a thousand
    times, so only the runtime's own tools (version, services) and openssl are started."""
    units = " ".join(shlex.quote(unit) for unit in probe.service_units)
    command = (
        identity_lines(rootfs) + f"echo version=$({probe.version_command} 2>/dev/null); "
        f"s=$(systemctl is-active {units} 2>/dev/null); echo services=$s; "
        f"{_hosts_file_lines()}"
        f"{_registry_running(rootfs)}"
        f"{_host_key_files()}"
        + (
            f"echo cert=$(openssl x509 -noout -enddate -in {shlex.quote(probe.cert_file)} "
            f"2>/dev/null); "
            if probe.cert_file
            else ""
        )
        + "true"
    )
    return Fact(command, lambda out: parse_host_state(out, probe))


def identity_lines(rootfs: str) -> str:
    """hostname=, marker= (the rootfs it holds) and machine= lines, mostly from builtins."""
    return (
        "h=; read -r h 2>/dev/null < /proc/sys/kernel/hostname || h=$(hostname); "
        'echo "hostname=$h"; '
        f"m=; read -r m 2>/dev/null < {_marker(rootfs)}; "
        'echo "marker=$m"; '
        "echo machine=$(uname -m); "
    )


def key_values(out: str) -> dict[str, str]:
    """KEY=VALUE lines -> their values, stripped; the first line of each key (later ones are
    noise: a login banner, a profile's output)."""
    values: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.partition("=")
        if sep and name not in values:
            values[name] = value.strip()
    return values


def _hosts_file_lines() -> str:
    """endpoint= (sealer's first endpoint line), aliases= and registry= (their lines, each
    ended by ';'), from one pass over the hosts file."""
    endpoint_mark, aliases_mark, registry_mark = (
        shlex.quote(mark) for mark in (endpoint.MARK, HOST_ALIASES_MARK, REGISTRY_MARK)
    )
    return (
        "e=; a=; r=; "
        'while IFS= read -r l || [ -n "$l" ]; do '
        f'case $l in *{endpoint_mark}*) [ -n "$e" ] || e=$l ;; esac; '
        f'case $l in *{aliases_mark}*) a="$a$l;" ;; esac; '
        f'case $l in *{registry_mark}*) r="$r$l;" ;; esac; '
        f"done 2>/dev/null < {hostsfile.HOSTS}; "
        'echo "endpoint=$e"; echo "aliases=$a"; echo "registry=$r"; '
    )


def _host_key_files() -> str:
    """host_keys= the public keys in sshd's default files (type and base64, ';'-separated):
    what the host's key is now, whatever an open connection saw when it was made."""
    return (
        "hk=; for f in /etc/ssh/ssh_host_*_key.pub; do "
        '[ -r "$f" ] && read -r t k _ < "$f" && hk="$hk$t $k;"; done 2>/dev/null; '
        'echo "host_keys=$hk"; '
    )


def parse_host_keys(text: str) -> tuple[str, ...]:
    """'TYPE BASE64;...' -> their SHA256 fingerprints, as OpenSSH prints them."""
    import base64
    import binascii
    import hashlib

    found = []
    for entry in text.split(";"):
        words = entry.split()
        if len(words) != 2:
            continue
        try:
            blob = base64.b64decode(words[1], validate=True)
        except (binascii.Error, ValueError):
            continue
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        found.append(f"SHA256:{digest}")
    return tuple(found)


def _registry_running(rootfs: str) -> str:
    """registry_running=yes when the pid file of the host's registry names a live registry
    process (its command line, read with bash's mapfile: NUL-separated)."""
    pidfile = shlex.quote(f"{os.path.dirname(rootfs)}/registry/registry.pid")
    return (
        f"p=; c=(); read -r p 2>/dev/null < {pidfile}; "
        "case $p in ''|*[!0-9]*) ;; *) mapfile -d '' -t c 2>/dev/null < /proc/$p/cmdline ;; esac; "
        'case " ${c[*]} " in *registry*) echo registry_running=yes ;; '
        "*) echo registry_running=no ;; esac; "
    )


def parse_host_state(out: str, probe: RuntimeProbe) -> dict:
    """KEY=VALUE lines -> hostname, marker, version (None: not installed), active services."""
    values = key_values(out)
    statuses = values.get("services", "").split()
    mapped = values.get("endpoint")
    return {
        # The master sealer's hosts line maps the endpoint to ("" none; None: not asked).
        "endpoint": None if mapped is None else (endpoint.parse_mapping(mapped) or ""),
        "cert_expires": parse_not_after(values.get("cert", "")),
        "host_aliases": None
        if "aliases" not in values
        else tuple(hostsfile.parse_lines(values["aliases"].replace(";", "\n"), HOST_ALIASES_MARK)),
        "registry_addresses": None
        if "registry" not in values
        else tuple(
            line.split()[0]
            for line in hostsfile.parse_lines(values["registry"].replace(";", "\n"), REGISTRY_MARK)
            if line.split()
        ),
        "registry_running": None
        if "registry_running" not in values
        else values["registry_running"] == "yes",
        "hostname": values.get("hostname", ""),
        "host_keys": parse_host_keys(values.get("host_keys", "")),
        "marker": values.get("marker", ""),
        "machine": values.get("machine", ""),
        "version": probe.parse_version(values.get("version", "")),
        "services": tuple(
            unit
            for unit, status in zip(probe.service_units, statuses, strict=False)
            if status == "active"
        ),
    }


def parse_not_after(text: str) -> float | None:
    """`notAfter=Nov 28 04:00:00 2027 GMT` (openssl x509 -enddate) -> Unix time."""
    import calendar
    import time

    _, _, date = text.partition("notAfter=")
    try:
        return float(calendar.timegm(time.strptime(" ".join(date.split()), "%b %d %H:%M:%S %Y %Z")))
    except ValueError:
        return None


def host_facts(ip: str, host_key: str, values: dict) -> HostFacts:
    return HostFacts(ip, reachable=True, host_key=host_key, **values)
