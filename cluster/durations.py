"""Durations on the command line: 0s, 30s, 5m, 1m30s, 250ms, 1h (a bare number is seconds)."""

import re

from cluster.errors import SealerError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, option: str = "duration") -> float:
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise SealerError(f"{option}: {text!r} is not a duration (examples: 0s, 30s, 5m, 1m30s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)
