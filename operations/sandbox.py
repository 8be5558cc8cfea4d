"""`sealer sandbox ...`: local SSH hosts to try sealer on (see sandbox/hosts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox import hosts


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


def down() -> int:
    return hosts.down()


def describe() -> list[dict]:
    return hosts.describe()
