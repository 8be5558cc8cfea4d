"""One-line errors and warnings that point into a YAML file: `FILE:LINE:COL: PATH: message`."""

from __future__ import annotations

import re

from cluster.errors import InputError
from cluster.yamldoc import YamlDoc, format_path, key_node_at, node_at


class Problems:
    """Collects one-line errors that point into the file."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def at(self, doc: YamlDoc, path: list, message: str, *, key: bool = False, warn=False) -> None:
        node = key_node_at(doc.node, path) if key else node_at(doc.node, path)
        m = node.start_mark
        place = format_path(path) if path else f"document {doc.index}"
        line = f"{self.file}:{m.line + 1}:{m.column + 1}: {place}: {message}"
        found = self.warnings if warn else self.errors
        if line not in found:  # a shared setting checked once per host group reports once
            found.append(line)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InputError(sorted(self.errors, key=_position))


def _position(line: str) -> tuple[int, int]:
    """Sort key: LINE and COL of a `FILE:LINE:COL: ...` message."""
    m = re.search(r":(\d+):(\d+): ", line)
    return (int(m[1]), int(m[2])) if m else (0, 0)
