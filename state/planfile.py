"""Saved plans (`sealer plan --out FILE`): the plan plus what it was made from, sealed by a checksum.

The checksum catches a plan edited by hand; lineage and serial let apply refuse a stale plan.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from state.local import StateError, atomic_write

KIND = "sealer-plan"


def _checksum(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def save(path: str | Path, plan: dict, sources: dict) -> None:
    body = {"kind": KIND, "plan": plan, "sources": sources}
    document = {**body, "checksum": _checksum(body)}
    atomic_write(Path(path), (json.dumps(document, indent=1) + "\n").encode())


def is_plan_file(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"kind": "sealer-plan"' in head


def load(path: str | Path) -> tuple[dict, dict]:
    """The saved plan and its sources, or a clear error for a broken or edited file."""
    try:
        document = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise StateError(f"{path}: no such plan file") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise StateError(f"{path}: not a readable saved plan ({e})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise StateError(f"{path}: not a saved sealer plan")
    body = {k: document.get(k) for k in ("kind", "plan", "sources")}
    if document.get("checksum") != _checksum(body):
        raise StateError(
            f"{path}: the saved plan's checksum does not match its content "
            f"(edited by hand?); make a new plan with `sealer plan --out`"
        )
    return document["plan"], document["sources"]
