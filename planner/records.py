"""What the planner compares per host: the fields that, when changed, need an action."""

from __future__ import annotations

import hashlib
import hmac
import json

from cluster.model import MASTER, Host


def env_digest(env: dict[str, str], key: str) -> str:
    """A keyed hash of the host env: the state sees a change without keeping values (secrets)."""
    canonical = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    return "hmac-sha256:" + hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def desired_record(host: Host, key: str) -> dict:
    return {
        "roles": sorted(host.roles),
        "labels": dict(host.labels),
        "taints": sorted(host.taints),
        "env_digest": env_digest(host.env, key),
    }


def recorded_record(record: dict) -> dict:
    return {
        "roles": sorted(record.get("roles", [])),
        "labels": dict(record.get("labels", {})),
        "taints": sorted(record.get("taints", [])),
        "env_digest": record.get("env_digest", ""),
    }


def is_master_record(record: dict) -> bool:
    return MASTER in record.get("roles", ())
