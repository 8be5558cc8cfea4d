"""Hosts that stay and change: their settings (labels, taints, env, aliases), where their
control-plane endpoint points, the image's content at the same version."""

from __future__ import annotations

from cluster.actions import Kind
from cluster.model import Action
from cluster.records import host_record, update_host
from executors import preparation
from executors.context import ApplyContext


def update_host_settings(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    old = ctx.state.hosts[ip]
    ctx.runtime.set_labels_and_taints(ctx.ops(), ip, old.labels, list(old.taints))
    preparation.set_host_aliases(ctx, ip)
    if ctx.templates:  # the env may have changed: render again
        preparation.render_templates(ctx, ip)
    new = host_record(ctx.desired.hosts[ip], lineage=ctx.state.lineage, version="", status="")
    return [
        update_host(
            ip,
            roles=list(new.roles),
            labels=dict(new.labels),
            taints=list(new.taints),
            env_digest=new.env_digest,
            host_aliases=list(new.host_aliases),
        )
    ]


def update_endpoint(ctx: ApplyContext, action: Action) -> list[dict]:
    """Move a node's endpoint to a master that stays, before its master leaves."""
    ctx.point_endpoint(action.host, action.details.to_master)
    return []


def sync_rootfs(ctx: ApplyContext, action: Action) -> list[dict]:
    """Copy the image's new content; the runtime and its version stay as they are."""
    preparation.install(ctx, action.host, action.roles, None, install=False)
    return []


STEPS = {
    Kind.UPDATE_HOST: update_host_settings,
    Kind.UPDATE_ENDPOINT: update_endpoint,
    Kind.SYNC_ROOTFS: sync_rootfs,
}
