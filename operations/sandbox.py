"""`sealer sandbox ...`: local SSH hosts to try sealer on (see sandbox/hosts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox import hosts
from sandbox import registry as source_registry


@dataclass(frozen=True)
class Started:
    first: str
    last: str
    count: int
    clusterfile: str  # ready for these hosts
    saved_to: Path  # where that Clusterfile was also written


@dataclass(frozen=True)
class Network:
    """--net netns and its link shaping (sandbox/network.py); None: $SEALER_SANDBOX_NET."""

    mode: str | None = None
    rate: str | None = None
    delay: str | None = None
    operator_rate: str | None = None


def up(count: int, image: str, masters: int, net: Network = Network()) -> Started:
    started = hosts.up(
        count, rate=net.rate, delay=net.delay, operator_rate=net.operator_rate, net=net.mode
    )
    text = hosts.clusterfile([h.address for h in started], image, masters=masters)
    path = hosts.base() / "Clusterfile"
    path.write_text(text)
    return Started(started[0].address, started[-1].address, len(started), text, path)


def down() -> tuple[int, bool]:
    """Stop every sandbox host and the sandbox registry: (hosts stopped, registry stopped)."""
    return hosts.down(), source_registry.down()


def registry(port: int) -> source_registry.Running:
    """The sandbox's source registry, started if it is not running, with its images."""
    return source_registry.up(port)


def describe() -> list[dict]:
    return hosts.describe()


def report_machine(host: str, machine: str) -> str:
    """Make a sandbox host report `machine` to uname -m ("" for its real one); its name."""
    return hosts.report_machine(host, machine)


def make_private(host: str, private: bool = True) -> str:
    """Cut (or restore) this machine's route to a netns sandbox host; its name."""
    return hosts.make_private(host, private)


def fake(host: str, swap_kb: int | None, memory_kb: int | None, clock: int | None) -> str:
    """Make a sandbox host report swap, memory or a clock offset (sandbox/hosts.py); its name."""
    return hosts.fake(host, swap_kb, memory_kb, clock)
