"""The state document on disk and in the journal: JSON, as backends store it.

The typed form is `cluster.records.State`; backends deal in documents so that they store
exactly what they read (and old files round-trip). No secrets are ever put in a document.
"""

from __future__ import annotations

from cluster.records import (
    State,
    delete_host,
    now_utc,
    set_field,
    set_host,
    update_host,
)

__all__ = [
    "apply_patch",
    "content",
    "delete_host",
    "new_document",
    "set_field",
    "set_host",
    "touch",
    "update_host",
]

# Fields that are bookkeeping, not content: changing only these never bumps the serial.
BOOKKEEPING = ("serial", "updated_at")


def new_document(cluster: str) -> dict:
    return State.new(cluster).to_json()


def content(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in BOOKKEEPING}


def touch(doc: dict) -> None:
    doc["updated_at"] = now_utc()


def apply_patch(doc: dict, patch: dict) -> None:
    """Replay one journal patch on a document, in place (State.patched is the typed twin)."""
    op = patch["op"]
    if op == "set_host":
        doc["hosts"][patch["ip"]] = patch["record"]
    elif op == "update_host":
        if patch["ip"] in doc["hosts"]:
            doc["hosts"][patch["ip"]].update(patch["fields"])
    elif op == "delete_host":
        doc["hosts"].pop(patch["ip"], None)
    elif op == "set":
        doc[patch["field"]] = patch["value"]
    else:
        raise ValueError(f"unknown state patch {op!r}")
