"""Plugin actions and the `on:` host selector, as sealer reads them.

An action may combine phases with `|` (sealer splits it). Sealer 0.8's names (PreInit,
PostInstall, ...) run at the phase that took their place, with a warning; sealer itself now
ignores them silently. `on:` (sealer 0.8) narrows the hosts: a comma-separated list of IPs,
IP ranges (A-B), roles (master, node) or label selectors (key=value, key= or key).
"""

from __future__ import annotations

import ipaddress

PHASES = (
    "pre-init-host",
    "post-init-host",
    "pre-clean-host",
    "post-clean-host",
    "upgrade-host",
    "pre-install",
    "post-install",
    "pre-uninstall",
    "post-uninstall",
    "pre-scaleup",
    "post-scaleup",
    "upgrade",
)
LEGACY = {
    "PreInit": "pre-init-host",
    "PostInit": "post-init-host",
    "PreJoin": "pre-init-host",
    "PostJoin": "post-init-host",
    "PreInstall": "pre-install",
    "PostInstall": "post-install",
    "PreClean": "pre-clean-host",
    "PostClean": "post-clean-host",
    "PreUpgrade": "upgrade-host",
}


def actions_of(action: str) -> list[str]:
    return [LEGACY.get(a.strip(), a.strip()) for a in action.split("|") if a.strip()]


def action_problems(action: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) of an action field."""
    errors, warnings = [], []
    for part in (a.strip() for a in action.split("|")):
        if not part:
            continue
        if part in LEGACY:
            warnings.append(f"{part} is sealer 0.8's name; it runs at {LEGACY[part]}")
        elif part not in PHASES:
            errors.append(
                f"unknown action {part!r}; actions: {', '.join(PHASES)} (combine with '|')"
            )
    return errors, warnings


def selector_problem(selector: str) -> str:
    for item in _items(selector):
        if item in ("master", "node") or _is_ip_or_range(item) or _is_label(item):
            continue
        return (
            f"{item!r} is not an IP, an IP range (A-B), a role (master, node) or a label "
            f"selector (key=value)"
        )
    return ""


def selects(selector: str, host) -> bool:
    """Whether `on:` picks this host (its Clusterfile IP, roles and labels)."""
    for item in _items(selector):
        if item in ("master", "node") and item in host.roles:
            return True
        if _is_ip_or_range(item) and _in_range(item, host.ip):
            return True
        if _is_label(item):
            key, eq, value = item.partition("=")
            if key in host.labels and (not eq or not value or host.labels[key] == value):
                return True
    return False


def _items(selector: str) -> list[str]:
    return [i.strip() for i in str(selector).split(",") if i.strip()]


def _is_ip_or_range(item: str) -> bool:
    try:
        for part in item.split("-", 1):
            ipaddress.ip_address(part.strip())
        return True
    except ValueError:
        return False


def _in_range(item: str, ip: str) -> bool:
    first, _, last = item.partition("-")
    address = ipaddress.ip_address(ip)
    start = ipaddress.ip_address(first.strip())
    end = ipaddress.ip_address(last.strip()) if last else start
    return start.version == address.version and start <= address <= end


def _is_label(item: str) -> bool:
    from cluster.names import label_key_problem, label_value_problem

    key, _, value = item.partition("=")
    return not label_key_problem(key) and not label_value_problem(value)
