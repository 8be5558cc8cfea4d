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


def up(count: int, image: str, masters: int) -> Started:
    started = hosts.up(count)
    text = hosts.clusterfile(count, image, masters=masters)
    path = hosts.base() / "Clusterfile"
    path.write_text(text)
    return Started(started[0].address, started[-1].address, len(started), text, path)


def down() -> int:
    return hosts.down()


def describe() -> list[dict]:
    return hosts.describe()
