"""Transient connection failures: when to try again.

A busy host answers late or drops a new connection (a banner timeout, a reset during the
handshake, sshd's MaxStartups refusing unauthenticated connections past its limit). Such a
failure is tried again after a pause that grows with each attempt and is drawn at random
within its bounds, so hundreds of connections that failed together do not come back together.
A refused login or a changed host key is never tried again: it would fail the same way.
"""

from __future__ import annotations

import random
import time

FIRST_PAUSE = 0.5  # seconds before the second attempt, on average
LONGEST_PAUSE = 8.0


def pause(attempt: int, draw=random.random) -> float:
    """Seconds to wait after failed attempt number `attempt` (0 for the first): at least
    half of the doubling step, at most all of it (jitter that still backs off)."""
    step = min(FIRST_PAUSE * 2**attempt, LONGEST_PAUSE)
    return step / 2 + draw() * step / 2


def room_for(deadline: float, wait: float, attempt_time: float) -> bool:
    """Whether another attempt, after waiting, can end before the deadline (monotonic)."""
    return time.monotonic() + wait + attempt_time <= deadline


def short_reason(message: str) -> str:
    """A failed attempt's message without what it tried (user, key), for the tally."""
    return message.split(" (tried ", 1)[0]
