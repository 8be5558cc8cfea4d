"""How a command reaches the state and the hosts: the settings the CLI fills from its flags.

Kept apart from operations.common so the CLI can build them without loading the Clusterfile
reader and everything behind it (`sealer images` starts in a fraction of `sealer plan`'s time).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from state.backend import Backend


@dataclass(frozen=True)
class StateRef:
    """Which state: a file (--state), a PostgreSQL URL (--backend), or the default file."""

    path: str | None = None
    backend_url: str | None = None
    lock_timeout: float = 0.0  # seconds to wait for the lock
    backend: Backend | None = None  # an open backend instead (embedding, tests)


class RetryTally:
    """The connection attempts a command tried again after a transient failure (a late
    banner, a reset handshake): host -> reason -> count. Called from worker threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reasons: dict[str, Counter] = {}

    def __call__(self, host: str, reason: str) -> None:
        with self._lock:
            self._reasons.setdefault(host, Counter())[reason] += 1

    def __len__(self) -> int:
        with self._lock:
            return sum(sum(c.values()) for c in self._reasons.values())

    def by_host(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {host: dict(c) for host, c in sorted(self._reasons.items())}


@dataclass(frozen=True)
class SSHSettings:
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    retries: int = 2  # more attempts after a failed connection
    # seconds a connection used for reads stays up after a run, for the next (0: none kept)
    persist: float = 0.0
    # How hosts are reached: (hosts, timeouts, pinned keys) -> a driver. None: OpenSSH through
    # Fabric (executors.driver.Driver); tests give a recording double.
    connect: Callable | None = None
    # Told of each connection attempt tried again (host, reason); the CLI shows the count.
    retried: RetryTally = field(default_factory=RetryTally, compare=False)
