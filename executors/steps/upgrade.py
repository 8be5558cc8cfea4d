"""Upgrades: a node's new rootfs (copied while its host was prepared) installed, then the
runtime's upgrade; the barrier between worker batches; a master reconfigured in place."""

from __future__ import annotations

from cluster.actions import Kind
from cluster.model import Action
from cluster.records import update_host
from executors import preparation
from executors.context import ApplyContext


def upgrade(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    preparation.prepared(ctx, action)  # the new rootfs is on the host: install it
    ctx.plugins(ip, "upgrade-host", action.roles)
    ctx.run(ip, f"bash {ctx.rootfs}/scripts/init.sh")
    if action.kind == Kind.UPGRADE_MASTER:
        ctx.runtime.upgrade_master(ctx.ops(), ip)
    else:
        ctx.runtime.upgrade_worker(ctx.ops(), ip)
    return [update_host(ip, version=action.details.to_version)]


def batch_barrier(ctx: ApplyContext, action: Action) -> list[dict]:
    """A barrier between batches: nothing to do on any host."""
    return []


def reconfigure_master(ctx: ApplyContext, action: Action) -> list[dict]:
    ctx.runtime.reconfigure_master(ctx.ops(), action.host)
    return []


STEPS = {
    Kind.UPGRADE_MASTER: upgrade,
    Kind.UPGRADE_WORKER: upgrade,
    Kind.UPGRADE_BATCH: batch_barrier,
    Kind.RECONFIGURE_MASTER: reconfigure_master,
}
