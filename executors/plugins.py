"""SHELL plugins from the Clusterfile, run at their lifecycle phase on the hosts of their scope."""

from __future__ import annotations

from cluster.model import Document

HOST_PHASES = (
    "pre-init-host",
    "post-init-host",
    "pre-clean-host",
    "post-clean-host",
    "upgrade-host",
)


def plugins_for(plugins: tuple[Document, ...], phase: str, roles: tuple[str, ...]):
    """Plugins of this phase whose scope covers one of roles, in name order (as sealer does)."""
    for plugin in sorted(plugins, key=lambda p: p.name):
        spec = plugin.body["spec"]
        if spec["action"] != phase:
            continue
        scope = [s for s in spec.get("scope", "").split("|") if s]
        if not scope or set(scope) & set(roles):
            yield plugin.name, spec["data"]
