"""What runs on the bootstrap master once the cluster is up: the launch commands, each app of
the image (its folder put in the rootfs, its commands run there), an app no longer launched."""

from __future__ import annotations

import shlex

from cluster.actions import Kind
from cluster.apps import APPS_DIR, name_problem
from cluster.errors import SealerError
from cluster.model import Action
from cluster.records import set_field
from executors import apps
from executors import registry as registry_remote
from executors.context import ApplyContext


def launch_commands(ctx: ApplyContext, action: Action) -> list[dict]:
    for command in action.details.commands:
        ctx.run(action.host, f"cd {ctx.rootfs} && {command}")
    return [set_field("launch_digest", action.details.digest)]


def launch_app(ctx: ApplyContext, action: Action) -> list[dict]:
    """Put the app's folder in the rootfs on the bootstrap master and run its commands
    there, with the host's env under the app's."""
    details, ip = action.details, action.host
    app = next(a for a in ctx.desired.apps if a.name == details.app)
    _add_app_images(ctx)
    env = {**ctx.host_env(ip), **{k: v for k, v in app.env.items() if k.isidentifier()}}
    folder = f"{ctx.rootfs}/{APPS_DIR}/{details.app}"
    ctx.run(ip, apps.install_command(folder), stdin=apps.packed(app, env))
    for command in details.commands:
        ctx.driver.host(ip).run(f"cd {shlex.quote(folder)} && {command}", env=env)
    recorded = {"digest": details.digest, "image": details.image}
    return [set_field("apps", {**ctx.state.apps, details.app: recorded})]


def remove_app(ctx: ApplyContext, action: Action) -> list[dict]:
    """The Application's delete commands (if any) in the app's folder, then the folder goes
    and the state forgets the app."""
    name, ip = action.details.app, action.host
    if name_problem(name):  # the name comes from the state, and becomes a path to remove
        raise SealerError(f"app {name!r} in the state {name_problem(name)}; refused")
    folder = shlex.quote(f"{ctx.rootfs}/{APPS_DIR}/{name}")
    for command in action.details.commands:
        ctx.run(ip, f"mkdir -p {folder} && cd {folder} && {command}")
    ctx.run(ip, f"rm -rf {folder}")
    remaining = {k: v for k, v in ctx.state.apps.items() if k != name}
    return [set_field("apps", remaining)]


def _add_app_images(ctx: ApplyContext) -> None:
    """An application image's container images, into every serving registry (once)."""
    app_image = ctx.desired.app_image
    if not app_image or not app_image.container_images or not ctx.desired.registry:
        return
    with ctx.lock:
        if ctx.app_images_added:
            return
        for ip, record in ctx.state.hosts.items():
            if record.registry_served:
                registry_remote.add_images(ctx.driver.host(ip), app_image, ctx.rootfs)
        ctx.app_images_added = True


STEPS = {
    Kind.LAUNCH_APPS: launch_commands,
    Kind.LAUNCH_APP: launch_app,
    Kind.REMOVE_APP: remove_app,
}
