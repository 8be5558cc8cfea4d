"""Hosts behind jump hosts (bastions): connections that pass through other SSH servers.

What `ssh -J` does, done once per run for a whole fleet:
- Fabric/paramiko side (Gateways): one SSH connection per jump chain, shared by every host
  behind it; each host's own SSH connection runs inside a direct-tcpip channel of it. So 200
  hosts behind one bastion cost one login to the bastion, not 200.
- OpenSSH's side is the same route as a ProxyCommand of `ssh -W` (executors/openssh.py).

A jump's host key is pinned like a host's: the state keeps the first key it showed (by
ADDRESS:PORT), and a jump that shows another is refused before any login, so no password or
agent signature ever reaches an impostor. A jump that cannot be reached is remembered for the
run: each host behind it fails at once with `bastion ADDRESS down`, not after its own timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time

from cluster.model import Jump
from executors import retrying
from executors.driver import HostError, KeyMismatch, fingerprint, mask, pinned_key_policy

CHAIN_REACH = "direct-tcpip"


class JumpDown(HostError):
    """A jump host could not be used; every host behind it is unknown for this run."""

    def __init__(self, jump: Jump, why: str, refused: bool = False):
        self.jump = jump
        self.why = why
        self.refused = refused
        state = "refused" if refused else "down"  # refused: reached, but not trusted or not in
        super().__init__(jump.name, f"bastion {jump.name} {state}: {why}", True, False, "bastion")


class Gateways:
    """The run's connections to jump hosts, by chain (the hops from the operator's side)."""

    def __init__(self, timeouts, pins: dict[str, str] | None = None):
        self.timeouts = timeouts
        self.pins = dict(pins or {})  # jump name (ADDRESS:PORT) -> fingerprint, from the state
        self.seen: dict[str, str] = {}  # jump name -> the fingerprint it showed this run
        self._clients: dict[tuple[Jump, ...], object] = {}
        self._failed: dict[tuple[Jump, ...], JumpDown] = {}
        self._locks: dict[tuple[Jump, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def channel(self, chain: tuple[Jump, ...], address: str, port: int):
        """A socket-like channel to address:port, opened by the chain's last jump."""
        transport = self._client(chain).get_transport()
        try:
            return transport.open_channel(
                CHAIN_REACH, (address, port), ("127.0.0.1", 0), timeout=self.timeouts.connect
            )
        except Exception as e:  # paramiko's ChannelException: the jump could not connect
            last = chain[-1]
            raise HostError(
                address,
                f"bastion {last.name} cannot reach {address}:{port}: {_why(e)}",
                unreachable=True,
                retryable=True,
                reason="bastion",
            ) from None

    def _client(self, chain: tuple[Jump, ...]):
        with self._lock:
            lock = self._locks.setdefault(chain, threading.Lock())
        with lock:  # one login per chain, however many hosts ask at once
            client = self._clients.get(chain)
            if client is not None and client.get_transport().is_active():
                return client
            if chain in self._failed:
                raise self._failed[chain]
            passed = []
            for attempt in range(self.timeouts.retries + 1):
                try:
                    client = self._login(chain)
                    break
                except JumpDown as down:
                    # a refusal (key, login) is final; a connection problem may pass
                    if down.refused or attempt == self.timeouts.retries:
                        self._failed[chain] = down
                        raise
                    passed.append(down.why)
                    time.sleep(retrying.pause(attempt))
            for why in passed:
                self.timeouts.passed(chain[-1].name, why)
            self._clients[chain] = client
            return client

    def _login(self, chain: tuple[Jump, ...]):
        import paramiko

        jump = chain[-1]
        try:
            sock = self.channel(chain[:-1], jump.address, jump.port) if len(chain) > 1 else None
        except JumpDown:
            raise
        except HostError as e:
            raise JumpDown(jump, e.message) from None
        pin = self.pins.get(jump.name, "")
        client = paramiko.SSHClient()
        if not pin:
            with contextlib.suppress(OSError):
                client.load_system_host_keys()
        client.set_missing_host_key_policy(pinned_key_policy()(pin))
        try:
            client.connect(
                jump.address,
                port=jump.port,
                username=jump.user,
                key_filename=jump.key_file or None,
                passphrase=jump.key_passphrase or None,
                password=jump.password or None,
                allow_agent=jump.agent and not jump.key_file,
                look_for_keys=False,
                sock=sock,
                timeout=self.timeouts.connect,
                banner_timeout=self.timeouts.connect,
                auth_timeout=self.timeouts.connect,
            )
        except KeyMismatch as mismatch:
            client.close()
            raise JumpDown(
                jump,
                f"host key changed: the state pinned {pin}, the bastion now shows "
                f"{mismatch.seen}; if it was reinstalled on purpose: "
                f"sealer state forget-host-key {jump.name}",
                refused=True,
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise JumpDown(jump, f"authentication failed as {jump.user}", refused=True) from None
        except Exception as e:  # OSError, SSHException, EOFError, a timeout
            client.close()
            raise JumpDown(jump, _why(e, (jump.password, jump.key_passphrase))) from None
        self.seen[jump.name] = fingerprint(client.get_transport().get_remote_server_key())
        return client

    def close(self) -> None:
        for chain in sorted(self._clients, key=len, reverse=True):  # inner hops first
            with contextlib.suppress(Exception):
                self._clients[chain].close()
        self._clients.clear()


def _why(error: Exception, secrets: tuple[str, ...] = ()) -> str:
    return mask((str(error) or type(error).__name__).removeprefix("[Errno None] "), secrets)
