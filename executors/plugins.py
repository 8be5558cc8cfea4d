"""SHELL plugins from the Clusterfile, run at their lifecycle phase on the hosts of their scope
(and of their `on:` selector, sealer 0.8's field)."""

from __future__ import annotations

from cluster.model import Document, Host
from cluster.plugins import actions_of, selects

HOST_PHASES = (
    "pre-init-host",
    "post-init-host",
    "pre-clean-host",
    "post-clean-host",
    "upgrade-host",
)


def plugins_for(
    plugins: tuple[Document, ...], phase: str, roles: tuple[str, ...], host: Host | None = None
):
    """Plugins of this phase whose scope covers one of roles and whose `on:` selects the host,
    in name order (as sealer does)."""
    for plugin in sorted(plugins, key=lambda p: p.name):
        spec = plugin.body["spec"]
        if phase not in actions_of(spec["action"]):
            continue
        scope = [s.strip() for s in spec.get("scope", "").split("|") if s.strip()]
        if scope and not set(scope) & set(roles):
            continue
        if spec.get("on") and (host is None or not selects(spec["on"], host)):
            continue
        yield plugin.name, spec["data"]
