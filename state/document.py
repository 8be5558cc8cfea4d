"""The state document: one JSON object per cluster. No secrets are ever put in it."""

from __future__ import annotations

import time
import uuid

FORMAT_VERSION = 1

# Fields that are bookkeeping, not content: changing only these never bumps the serial.
BOOKKEEPING = ("serial", "updated_at")


def new_document(cluster: str) -> dict:
    now = _now()
    return {
        "format_version": FORMAT_VERSION,
        "lineage": str(uuid.uuid4()),
        "serial": 0,
        "cluster": cluster,
        "image": None,
        "bootstrap_master": None,
        "hosts": {},
        "created_at": now,
        "updated_at": now,
    }


def content(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in BOOKKEEPING}


def is_empty(doc: dict) -> bool:
    return not doc.get("hosts") and doc.get("image") is None


def host_record(
    *, roles, labels, taints, env_digest, version, status, hostname="", host_key=""
) -> dict:
    return {
        "roles": list(roles),
        "labels": dict(labels),
        "taints": list(taints),
        "env_digest": env_digest,
        "version": version,
        "status": status,
        "hostname": hostname,
        "host_key": host_key,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def touch(doc: dict) -> None:
    doc["updated_at"] = _now()
