"""The cluster's registry on hosts that stay: served again (new content, settings or
credentials), stopped, or the runtime pointed at it again."""

from __future__ import annotations

from cluster.actions import Kind
from cluster.model import Action
from cluster.records import update_host
from executors import preparation
from executors import registry as registry_remote
from executors.context import ApplyContext


def serve_registry(ctx: ApplyContext, action: Action) -> list[dict]:
    preparation.serve_registry(ctx, action.host)
    return [update_host(action.host, registry_served=ctx.registry_served[action.host])]


def stop_registry(ctx: ApplyContext, action: Action) -> list[dict]:
    ctx.run(action.host, registry_remote.stop_command(ctx.rootfs, remove=True))
    return [update_host(action.host, registry_served="")]


def configure_registry(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    if ctx.desired.registry is None:  # its lines go; the state never kept its endpoint
        ctx.run(ip, registry_remote.unconfigure_command(""))
    else:
        preparation.configure_registry(ctx, ip)
    return [update_host(ip, registry=ctx.registry_client.get(ip, ""))]


STEPS = {
    Kind.SERVE_REGISTRY: serve_registry,
    Kind.STOP_REGISTRY: stop_registry,
    Kind.CONFIGURE_REGISTRY: configure_registry,
}
