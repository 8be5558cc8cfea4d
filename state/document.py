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


# ---- patches: what one finished action changes in the state ----
# The journal stores patches; replaying them on the document they were made against gives the
# document as it was after the last finished action.


def set_host(ip: str, record: dict) -> dict:
    return {"op": "set_host", "ip": ip, "record": record}


def update_host(ip: str, **fields) -> dict:
    return {"op": "update_host", "ip": ip, "fields": fields}


def delete_host(ip: str) -> dict:
    return {"op": "delete_host", "ip": ip}


def set_field(name: str, value) -> dict:
    assert name in ("image", "bootstrap_master", "launch_digest", "configs_digest"), name
    return {"op": "set", "field": name, "value": value}


def apply_patch(doc: dict, patch: dict) -> None:
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
