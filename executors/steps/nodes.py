"""Nodes that join: the first master initialises the control plane, the others join it."""

from __future__ import annotations

from cluster.actions import Kind
from cluster.model import Action
from cluster.records import set_field, set_host
from executors import preparation
from executors.context import ApplyContext


def init_cluster(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    key = preparation.prepared(ctx, action)
    ctx.plugins(ip, "pre-install", action.roles)
    ctx.point_endpoint(ip, ip)
    ctx.runtime.init(ctx.ops(bootstrap=ip), ip)
    ctx.plugins(ip, "post-install", action.roles)
    return [
        set_field("image", ctx.plan.image),
        set_field("bootstrap_master", ip),
        set_field("control_plane", ctx.control_plane()),
        set_host(ip, ctx.host_record(ip, key)),
    ]


def join(ctx: ApplyContext, action: Action) -> list[dict]:
    """The node reaches the control plane through the endpoint name, mapped to a running
    master (the plan's bootstrap master, which stays) while its host was prepared; a new
    master then serves itself."""
    ip = action.host
    key = preparation.prepared(ctx, action)
    if action.kind == Kind.JOIN_MASTER:
        ctx.runtime.join_master(ctx.ops(), ip)
        ctx.point_endpoint(ip, ip)
    else:
        ctx.runtime.join_worker(ctx.ops(), ip)
    return [set_host(ip, ctx.host_record(ip, key))]


STEPS = {Kind.INIT_CLUSTER: init_cluster, Kind.JOIN_MASTER: join, Kind.JOIN_WORKER: join}
