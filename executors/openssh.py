"""OpenSSH command lines: how sealer's own `ssh` processes authenticate, check a host's key
against the state's pin, and pass through jump hosts (a ProxyCommand of `ssh -W`)."""

from __future__ import annotations

import os
import shlex

from cluster.model import Jump


def pin_command(fingerprint: str) -> str:
    """A KnownHostsCommand that vouches for the host's key only if it is the pinned one.

    OpenSSH runs it without a shell and gives it the key it was shown (%f %H %t %K); it prints
    a known_hosts line for that key when the fingerprint is the pin, nothing otherwise, and
    StrictHostKeyChecking then refuses the host before authentication."""
    script = 'test "$1" = "$2" && echo "$3 $4 $5"; true'
    return f"/bin/sh -c '{script}' sealer-pin {fingerprint} %f %H %t %K"


def pinned_options(pin: str, timeout: float) -> list[str]:
    """Batch mode, no known_hosts file trusted, only the pinned key accepted (before any
    authentication), quiet: how every ssh process of sealer's reaches a host or a hop."""
    return [
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"KnownHostsCommand={pin_command(pin)}",
        "-o", f"ConnectTimeout={max(1, int(timeout))}",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def identity_options(key_file: str, agent: bool) -> list[str] | None:
    """How OpenSSH authenticates: the key file alone, or else the agent's keys; None when
    neither is possible (a password login: OpenSSH would have to be given the secret)."""
    if key_file:
        return ["-i", key_file, "-o", "IdentitiesOnly=yes"]
    if agent and os.environ.get("SSH_AUTH_SOCK"):
        return ["-o", "IdentitiesOnly=no"]
    return None


def forward_argv(
    chain: tuple[Jump, ...], pins: dict[str, str], address: str, port: int, timeout: float
) -> list[str] | None:
    """An ssh command line whose stdin and stdout are a TCP connection to address:port, made
    by the chain's last hop (`ssh -W`), each hop pinned to the state's key; None when a hop
    cannot be driven by OpenSSH without a secret, or has no pin yet."""
    *before, last = chain
    pin = pins.get(last.name, "")
    identity = identity_options(last.key_file, last.agent)
    if not pin or identity is None or last.key_passphrase or last.password:
        return None
    argv = ["ssh", "-F", "/dev/null", *identity, "-p", str(last.port), "-l", last.user]
    argv += pinned_options(pin, timeout)
    if before:
        inner = proxy_command(tuple(before), pins, last.address, last.port, timeout)
        if inner is None:
            return None
        argv += ["-o", f"ProxyCommand={inner}"]
    target = f"[{address}]" if ":" in address else address
    return [*argv, "-W", f"{target}:{port}", "--", last.address]


def proxy_command(
    chain: tuple[Jump, ...], pins: dict[str, str], address: str, port: int, timeout: float
) -> str | None:
    """forward_argv as a ProxyCommand value: the ssh that runs it expands %-tokens in it, so
    every % (meant literally for the hop) is doubled."""
    argv = forward_argv(chain, pins, address, port, timeout)
    return None if argv is None else shlex.join(argv).replace("%", "%%")
