"""Sizes on the command line: 512m, 4g, 1.5g, 1048576 (a bare number is bytes)."""

import re

from cluster.errors import SealerError

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str, option: str = "size") -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgt]?)i?b?", text.strip().lower())
    if not m or float(m[1]) <= 0:
        raise SealerError(f"{option}: {text!r} is not a size (examples: 512m, 4g)")
    return int(float(m[1]) * _UNITS[m[2]])
