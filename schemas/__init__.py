"""JSON Schemas (draft 2020-12) of the Clusterfile kinds, and a validator that reports every error."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent

# kind -> schema file. The kubeadm kinds share one loose schema: kubeadm itself checks their fields.
KUBEADM_KINDS = (
    "InitConfiguration",
    "JoinConfiguration",
    "ClusterConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
)
SCHEMA_FILES = {
    "Cluster": "cluster.schema.json",
    "Plugin": "plugin.schema.json",
    "Config": "config.schema.json",
    "Application": "application.schema.json",
    **{kind: "kubeadm.schema.json" for kind in KUBEADM_KINDS},
}
SUPPORTED_KINDS = tuple(SCHEMA_FILES)
# Fields whose values may be secrets: an error about them names the rule, never the value.
SECRET_FIELDS = frozenset({"passwd", "pkPasswd", "password", "token", "env", "data"})


@cache
def validator(kind: str):
    from jsonschema import Draft202012Validator  # imported late: only commands that load need it

    # Not checked against the meta-schema here (a tenth of a large plan's time):
    # tests/test_reference.py checks every schema once.
    schema = json.loads((HERE / SCHEMA_FILES[kind]).read_text())
    return Draft202012Validator(schema)


def schema_errors(kind: str, document: dict) -> list[tuple[list, str]]:
    """Every schema error of one document as (path, message), in document order."""
    errors = []
    for error in validator(kind).iter_errors(document):
        path = list(error.absolute_path)
        unknown = _unknown_fields(error)
        if unknown:  # point at the unknown key itself, one error each
            allowed = ", ".join(error.schema.get("properties", {}))
            errors += [(path + [k], f"unknown field {k!r} (allowed: {allowed})") for k in unknown]
        else:
            errors.append((path, _message(error, path)))
    errors.sort(key=lambda e: [str(p) for p in e[0]])
    return errors


def _unknown_fields(error) -> list[str]:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    allowed = error.schema.get("properties", {})
    return sorted(str(k) for k in error.instance if k not in allowed)


def _message(error, path: list) -> str:
    if any(str(part) in SECRET_FIELDS for part in path):
        return _without_value(error)
    if error.validator == "const":
        return f"{error.instance!r} must be {error.validator_value!r}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return error.message


def _without_value(error) -> str:
    rule = error.validator
    wanted = error.validator_value
    if rule == "type":
        return f"must be of type {wanted!r} (the value is not shown: it may be a secret)"
    return f"does not satisfy {rule} {wanted!r} (the value is not shown: it may be a secret)"
