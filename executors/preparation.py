"""A host made ready for its action: the image's rootfs (relayed through the hosts, copied, or
only the changed files), the Configs, the templates rendered with its env, init.sh, its hosts
file (sealer's aliases, the control-plane endpoint), the plugins of the phase, and the
cluster's registry (served, or trusted and pointed at) before the runtime starts.

The apply runs preparations as nodes of its DAG (executors/apply.py), ahead of their actions:
copying the rootfs is the longest step of a first apply, and it depends on nothing in the
cluster. The relay, when used, is a node every preparation waits for. What they learn (the
hosts' names and markers, the relay's receipts) is kept in the ApplyContext.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cluster.actions import Kind
from cluster.model import Action
from executors import distribute, endpoint, hostsfile, relay
from executors import registry as registry_remote
from executors import templates as templates_remote
from executors.context import ApplyContext
from executors.facts import HOST_ALIASES_MARK, Seen

RELAY_MIN_HOSTS = 3  # fewer hosts: a direct copy each is as fast


# ---- the relay ----


def relay_rootfs(ctx: ApplyContext, ips: list[str]) -> None:
    """Look at every host at once; send the image's tarball to those that need it through
    the hosts themselves (executors/relay.py). A host without a good receipt is sent the
    tarball directly by its preparation."""
    unseen = [ip for ip in ips if ip not in ctx.seen]  # the host checks read the others
    if unseen:
        with ThreadPoolExecutor(min(len(unseen), 64)) as pool:
            ctx.seen.update(zip(unseen, pool.map(ctx.name_and_marker, unseen), strict=True))
    # Hosts that hold an older rootfs get only what changed (executors/delta.py). The relay
    # carries one tarball: the instance of the most hosts' platform (a multi-arch image's
    # other instances go to their hosts directly).
    needing = [ip for ip in ips if not ctx.seen[ip].marker]
    machines = [ctx.seen[ip].machine for ip in needing]
    common = max(set(machines), key=machines.count) if machines else ""
    needing = [ip for ip in needing if ctx.seen[ip].machine == common]
    if len(needing) < RELAY_MIN_HOSTS:
        return
    image = ctx.image_for(needing[0], common)
    source = distribute.tarball(image, {})  # the image only: Configs go over SSH
    dest = distribute.received_path(ctx.cluster_name, ctx.data_root)
    ctx.receipts = relay.Relay(ctx.driver, source, dest, needing).run()
    direct = {ip: r.error for ip, r in ctx.receipts.items() if not r.ok}
    ctx.note(
        f"relay: {len(needing) - len(direct)} of {len(needing)} hosts got the image "
        f"through the cluster"
        + "".join(f"\n  {ip}: sent directly: {why}" for ip, why in sorted(direct.items()))
    )


# ---- one host ----


def for_action(ctx: ApplyContext, action: Action) -> str:
    """The preparation an action's host needs; returns its host key fingerprint."""
    ip = action.host
    seen = ctx.seen.get(ip) or ctx.name_and_marker(ip)
    if action.kind in (Kind.UPGRADE_MASTER, Kind.UPGRADE_WORKER):
        return install(ctx, ip, action.roles, None, install=False, seen=seen)  # copy only
    key = install(
        ctx,
        ip,
        action.roles,
        "pre-init-host",
        "post-init-host",
        seen=seen,
        alone=action.kind == Kind.INIT_CLUSTER,  # the others wait for it (the DAG)
        # A joining node reaches the control plane through the plan's bootstrap master
        # (steps/nodes.py): set with the host aliases, in the same edit of the hosts file.
        endpoint_to=ctx.plan.bootstrap_master if action.spec.joins else None,
    )
    # Before the runtime starts: kubeadm init and the kubelets pull from the registry.
    if ctx.registry_served.get(ip):
        serve_registry(ctx, ip)
    if ctx.registry_client:
        configure_registry(ctx, ip)
    return key


def install(
    ctx: ApplyContext,
    ip: str,
    roles: tuple[str, ...],
    phase_before: str | None,
    phase_after: str | None = None,
    install: bool = True,
    seen: Seen | None = None,
    alone: bool = False,
    endpoint_to: str | None = None,
) -> str:
    """Facts (unless seen already), plugins, the rootfs and its init.sh. Returns the host key
    fingerprint. alone: no other host copies meanwhile. endpoint_to: the master the
    control-plane endpoint name is mapped to on this host."""
    remote = ctx.driver.host(ip)
    seen = seen or ctx.name_and_marker(ip)
    image = ctx.image_for(ip, seen.machine)  # before any change: a platform it lacks fails
    ctx.saw_hostname(ip, seen.name)
    ctx.plugins(ip, phase_before, roles)
    init = f"bash {ctx.rootfs}/scripts/init.sh"
    templated = bool(ctx.templates)  # rendered for this host before init.sh reads them
    receipt = ctx.receipts.get(ip)
    distribute.distribute(
        remote,
        image,
        ctx.cluster_name,
        ctx.configs,
        seen.marker,
        then=init if install and not templated else "",
        alone=alone,
        data_root=ctx.data_root,
        received=bool(receipt and receipt.ok),
    )
    if templated:
        render_templates(ctx, ip)
        if install:
            ctx.run(ip, init)
    set_host_aliases(ctx, ip, endpoint_to)
    if phase_after:
        ctx.plugins(ip, phase_after, roles)
    return remote.host_key()


def render_templates(ctx: ApplyContext, ip: str) -> None:
    """The rootfs' `*.tmpl` files (etc/, charts/, manifests/) rendered with this host's env
    over the image's, each written beside its template, which is removed."""
    values = {**ctx.image.env, **ctx.host_env(ip)}
    ctx.run(
        ip,
        templates_remote.install_command(ctx.rootfs),
        stdin=templates_remote.packed(ctx.templates, values),
    )


def set_host_aliases(ctx: ApplyContext, ip: str, endpoint_to: str | None = None) -> None:
    """spec.hostAliases in the host's hosts file (none: sealer's alias lines removed), and
    the endpoint name mapped to the master `endpoint_to` when given."""
    host = ctx.desired_host(ip)
    lines = {HOST_ALIASES_MARK: list(host.host_aliases) if host else []}
    if endpoint_to:
        lines[endpoint.MARK] = endpoint.point_lines(ctx.runtime.endpoint[0], endpoint_to)
    ctx.run(ip, hostsfile.set_marked_lines_command(lines))


# ---- the cluster's registry on a host ----


def check_registry_ca(ctx: ApplyContext) -> None:
    """Once per apply, before the first registry step: this machine holds the CA the
    running registry's certificate comes from (checked on a host that serves it)."""
    registry = ctx.desired.registry
    if not registry or registry.insecure or registry.kind != "local":
        return
    with ctx.lock:
        if ctx.registry_ca_checked:
            return
        serving = [ip for ip, r in ctx.state.hosts.items() if r.registry_served]
        if serving:
            remote = ctx.driver.host(serving[0])
            registry_remote.check_ca(remote, serving[0], ctx.rootfs, ctx.cluster_name)
        ctx.registry_ca_checked = True


def serve_registry(ctx: ApplyContext, ip: str) -> None:
    check_registry_ca(ctx)
    registry_remote.serve(
        ctx.driver.host(ip), ip, ctx.desired.registry, ctx.image, ctx.rootfs, ctx.cluster_name
    )


def configure_registry(ctx: ApplyContext, ip: str) -> None:
    check_registry_ca(ctx)
    registry = ctx.desired.registry
    registry_remote.configure(
        ctx.driver.host(ip),
        ip,
        registry,
        registry.serving_hosts(ctx.desired.masters),
        ctx.image.runtime,
        ctx.cluster_name,
    )


# ---- what an action gets ----


def prepared(ctx: ApplyContext, action: Action) -> str:
    """The host key of the action's prepared host: from its preparation node, which ran ahead
    in the DAG (its failure is this action's), or prepared now (a host that leaves first, then
    joins again, is prepared in its join, after its removal cleaned it)."""
    done = ctx.prepared.get(action.id)
    if done is None:
        return for_action(ctx, action)
    key, error = done
    if error is not None:
        raise error
    return key
