"""What the operator's OpenSSH would use for each host: ~/.ssh/config read through `ssh -G`.

For every host, the user's config decides what the Clusterfile leaves open: the address to
connect to (HostName), the user, the port, the key (IdentityFile) and the way there (ProxyJump,
ProxyCommand). What the Clusterfile says wins: its `user`, `port` and `pk`, and its bastion.
`ssh -G` prints OpenSSH's own resolution (Host and Match blocks, Include, first value wins),
so sealer reads the config exactly as `ssh` does rather than parsing it again.

The config is $SEALER_SSH_CONFIG, else ~/.ssh/config; without that file nothing is read (the
system-wide /etc/ssh/ssh_config is not: it holds client defaults, not routes to hosts).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from cluster import names
from cluster.errors import SealerError
from cluster.model import SSH, Jump

READERS = 8  # `ssh -G` processes at once (each takes a few ms)
HOP = re.compile(r"^(?:(?P<user>[^@\[\]/:]+)@)?(?P<host>\[[^\]]+\]|[^@:/]+)(?::(?P<port>\d+))?$")


def config_file() -> Path | None:
    chosen = os.environ.get("SEALER_SSH_CONFIG")
    path = Path(chosen) if chosen else Path.home() / ".ssh" / "config"
    return path if path.is_file() else None


def resolve(hosts: dict[str, SSH]) -> dict[str, SSH]:
    """hosts (ip -> the Clusterfile's SSH) with what the user's OpenSSH config adds."""
    config = config_file()
    if config is None or not hosts:
        return hosts
    baseline = _settings(Path("/dev/null"), "sealer-baseline.invalid")
    ips = list(hosts)
    with ThreadPoolExecutor(min(READERS, len(ips))) as pool:
        found = list(pool.map(lambda ip: _settings(config, ip), ips))
    return {
        ip: _merged(hosts[ip], ip, settings, baseline, config)
        for ip, settings in zip(ips, found, strict=True)
    }


@functools.cache
def _settings(config: Path, host: str) -> dict[str, list[str]]:
    """`ssh -G`'s answer for host: option -> its values (IdentityFile has several). Asked
    once per command: an apply's refresh, host checks and actions open drivers of their own."""
    try:
        done = subprocess.run(
            ["ssh", "-G", "-F", str(config), "--", host],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SealerError(f"{config}: cannot read it with `ssh -G`: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise SealerError(f"{config}: `ssh -G {host}` failed: {last}")
    settings: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key.lower(), []).append(value)
    return settings


def _one(settings: dict, key: str) -> str:
    return (settings.get(key) or [""])[0]


def _explicit(settings: dict, baseline: dict, key: str) -> str:
    """The config's value, when it differs from OpenSSH's built-in default."""
    value = _one(settings, key)
    return value if value and value != _one(baseline, key) else ""


def _merged(ssh: SSH, ip: str, settings: dict, baseline: dict, config: Path) -> SSH:
    changes: dict = {}
    hostname = _one(settings, "hostname")
    if hostname and hostname != ip:
        _check_address(hostname, config, ip)
        changes["address"] = hostname
    user = _explicit(settings, baseline, "user")
    if user and "user" not in ssh.given:
        _check_user(user, config, ip)
        changes["user"] = user
    port = _explicit(settings, baseline, "port")
    if port and "port" not in ssh.given:
        changes["port"] = int(port)
    if "pk" not in ssh.given and settings.get("identityfile") != baseline.get("identityfile"):
        key = _first_key(settings.get("identityfile") or [])
        if key:
            changes["key_file"] = key
    if not ssh.jumps:
        hops = _explicit(settings, baseline, "proxyjump")
        command = _explicit(settings, baseline, "proxycommand")
        if hops and hops != "none":
            changes["jumps"] = tuple(
                _jump(hop, config, ip, ssh.agent, baseline) for hop in hops.split(",")
            )
        elif command and command != "none":
            changes["proxy_command"] = command
    return replace(ssh, **changes) if changes else ssh


def _jump(hop: str, config: Path, ip: str, agent: bool, baseline: dict) -> Jump:
    """One ProxyJump hop ([user@]host[:port], or ssh://...), with the config's own settings
    for that host, as `ssh -J` uses them; its key: the config's IdentityFile, else the
    agent's keys (as for a host)."""
    spec = hop.removeprefix("ssh://")
    match = HOP.match(spec)
    if not match:
        raise SealerError(f"{config}: ProxyJump {hop!r} for {ip} is not [user@]host[:port]")
    host = match["host"].strip("[]")
    settings = _settings(config, host)
    address = _one(settings, "hostname") or host
    _check_address(address, config, ip)
    user = match["user"] or _one(settings, "user")
    _check_user(user, config, ip)
    port = int(match["port"] or _one(settings, "port") or 22)
    return Jump(
        address=address,
        port=port,
        user=user,
        key_file=_first_key(settings.get("identityfile") or [])
        if settings.get("identityfile") != baseline.get("identityfile")
        else "",
        agent=agent,
    )


def _first_key(files: list[str]) -> str:
    """The first IdentityFile that exists (OpenSSH tries them in order; so does its agent)."""
    for name in files:
        path = os.path.expanduser(name)
        if os.path.isfile(path):
            return path
    return ""


def _check_address(address: str, config: Path, ip: str) -> None:
    problem = names.address_problem(address)
    if problem:
        raise SealerError(f"{config}: the address {address!r} it gives for {ip} {problem}")


def _check_user(user: str, config: Path, ip: str) -> None:
    problem = names.user_problem(user)
    if problem:
        raise SealerError(f"{config}: the user {user!r} it gives for {ip} {problem}")
