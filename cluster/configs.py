"""Config documents as sealer writes them into the rootfs (pkg/config): `process` first
(`value`, `toJson`, `toBase64` in the order given; `toSecret` at write time), then the file is
written, or merged into the image's file: every YAML document of it gets the data's maps,
deeply, the data winning (mergo.WithOverride)."""

from __future__ import annotations

import base64
import json

import yaml

from cluster import maps
from cluster.errors import SealerError

PROCESSORS = ("value", "toJson", "toBase64", "toSecret")


def process_problem(process: str) -> str:
    unknown = [p for p in process.split("|") if p and p not in PROCESSORS]
    if unknown:
        return f"unknown processor {unknown[0]!r}; processors: {', '.join(PROCESSORS)}"
    return ""


def path_of(spec: dict) -> str:
    """Where the file goes in the rootfs: spec.path, inside the app's folder with appName."""
    if spec.get("appName"):
        return f"application/apps/{spec['appName']}/{spec['path']}"
    return spec["path"]


def preprocessed(spec: dict) -> str:
    """spec.data after `value`, `toJson` and `toBase64`: on the whole data, or with `value`
    on each top-level value."""
    data = spec.get("data", "")
    steps = [p for p in (spec.get("process") or "").split("|") if p]
    per_value = "value" in steps
    for step in steps:
        if step == "toJson":
            data = _each(data, _to_json) if per_value else _to_json(yaml_load(data))
        elif step == "toBase64":
            data = _each(data, _to_base64, scalar=True) if per_value else _b64(data)
    return data


def written(spec: dict, original: str | None) -> str:
    """The file's new content; original is the image's file (None: there is none)."""
    data = preprocessed(spec)
    if original is None:
        return data
    if "toSecret" in (spec.get("process") or "").split("|"):
        data = _into_secret(original, data)
    if spec.get("strategy") == "merge":
        data = merged_documents(original, data)
    return data


def merged_documents(original: str, data: str) -> str:
    overlay = yaml_load(data)
    if not isinstance(overlay, dict):
        raise SealerError("merge: the data must be a YAML mapping")
    try:
        documents = [d for d in yaml.safe_load_all(original) if d is not None]
    except yaml.YAMLError as e:
        raise SealerError(f"merge: the file is not YAML ({_first_line(e)})") from None
    merged = [maps.merged(d, overlay) for d in documents] or [overlay]
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in merged)


def yaml_load(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SealerError(f"the data is not YAML ({_first_line(e)})") from None


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or ["invalid"])[0]


def _to_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _to_base64(value) -> str:
    return _b64(value if isinstance(value, str) else _to_json(value))


def _each(data: str, convert, scalar: bool = False) -> str:
    mapping = yaml_load(data)
    if not isinstance(mapping, dict):
        raise SealerError("`value` processing needs the data to be a YAML mapping")
    return yaml.safe_dump({k: convert(v) for k, v in mapping.items()}, sort_keys=False)


def _into_secret(original: str, data: str) -> str:
    """toSecret: the data's keys put, base64-encoded, into the data of the Secret file."""
    secret = yaml_load(original) or {}
    values = yaml_load(data) or {}
    if not isinstance(secret, dict) or not isinstance(values, dict):
        raise SealerError("toSecret: the file must be a Secret and the data a mapping")
    secret.setdefault("data", {})
    secret["data"] = {**(secret["data"] or {}), **{k: _b64(str(v)) for k, v in values.items()}}
    return yaml.safe_dump(secret, sort_keys=False)
