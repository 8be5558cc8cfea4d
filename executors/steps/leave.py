"""Nodes that leave: drained and deleted from the cluster, then their host cleaned; or, for a
destroy, reset. A host that no longer answers is still removed through the masters."""

from __future__ import annotations

from cluster.actions import Kind
from cluster.model import Action
from cluster.records import delete_host, set_field
from executors import distribute, endpoint, hostsfile
from executors import registry as registry_remote
from executors.context import ApplyContext, GoneHostOps
from executors.facts import HOST_ALIASES_MARK


def delete(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    master = action.kind == Kind.DELETE_MASTER
    leave = ctx.runtime.delete_master if master else ctx.runtime.delete_worker
    heir = action.details.hands_bootstrap_to
    gone = ctx.unanswered(ip)
    if gone:  # a dead host leaves the Clusterfile: the masters still forget it
        ctx.note_gone(ip, gone, "removed through the masters only")
        ops = GoneHostOps(ctx, heir or ctx.bootstrap, ip)
        leave(ops, ip)
        if master:
            ctx.runtime.forget_member(ops, ip)
    else:
        ctx.plugins(ip, "pre-clean-host", action.roles)
        leave(ctx.ops(bootstrap=heir or None), ip)
        clean(ctx, ip, action.roles)
    patches = [delete_host(ip)]
    if heir:
        patches.append(set_field("bootstrap_master", heir))
    return patches


def reset_cluster(ctx: ApplyContext, action: Action) -> list[dict]:
    ip = action.host
    gone = ctx.unanswered(ip)
    if gone:  # nothing can reach it, and the cluster it was part of is going away
        ctx.note_gone(ip, gone, "forgotten without a reset")
        return [delete_host(ip)]
    record = ctx.state.hosts.get(ip)
    master = "master" in (record.roles if record else action.roles)
    ctx.plugins(ip, "pre-clean-host", action.roles)
    ctx.runtime.reset(ctx.ops(), ip, master)
    clean(ctx, ip, action.roles)
    return [delete_host(ip)]


def clean(ctx: ApplyContext, ip: str, roles: tuple[str, ...]) -> None:
    """What sealer put on a host goes: the registry, its trust, clean.sh's work, the rootfs,
    sealer's lines in the hosts file; then the post-clean-host plugins."""
    rootfs = ctx.rootfs
    ctx.run(ip, registry_remote.stop_command(rootfs, remove=True))
    registry = ctx.desired.registry if ctx.desired else None
    if registry:
        ctx.run(ip, registry_remote.unconfigure_command(registry.endpoint, registry.mirrored))
    else:
        ctx.run(ip, registry_remote.unconfigure_command(""))
    ctx.run(ip, f"test ! -f {rootfs}/scripts/clean.sh || bash {rootfs}/scripts/clean.sh")
    distribute.remove(ctx.driver.host(ip), ctx.cluster_name, ctx.data_root)
    ctx.run(ip, endpoint.remove_command())
    ctx.run(ip, hostsfile.set_lines_command(HOST_ALIASES_MARK, []))
    ctx.plugins(ip, "post-clean-host", roles)


STEPS = {Kind.DELETE_MASTER: delete, Kind.DELETE_WORKER: delete, Kind.RESET_CLUSTER: reset_cluster}
