"""What a Clusterfile launches (raw commands, or apps with their env and overrides) and the
templates it renders, checked at load time against the image (sealer's precedence: see
cluster/applications.py)."""

from __future__ import annotations

from pathlib import Path

from cluster import applications, apps, templates
from cluster.model import Host
from cluster.yamldoc import YamlDoc


def launch(cluster_doc: YamlDoc, others: list[YamlDoc], image, cluster_env, problems):
    """(raw commands, apps to launch, delete commands by app) by sealer's precedence
    (cluster/applications.py). Delete commands (an Application config's `delete.cmds`, which
    sealer's types sketch) run when the app stops being launched."""
    spec = cluster_doc.data["spec"]
    found = [d for d in others if d.data["kind"] == "Application"]
    for extra in found[1:]:
        problems.at(extra, ["kind"], "a second Application document; a Clusterfile holds one")
    app_doc = found[0] if found else None
    app_spec = app_doc.data.get("spec") or {} if app_doc else {}
    user_cmds = tuple(spec.get("cmd") or ()) or tuple(app_spec.get("cmds") or ())
    if spec.get("appNames"):
        names, where = spec["appNames"], (cluster_doc, ["spec", "appNames"])
    elif app_spec.get("launchApps"):
        names, where = app_spec["launchApps"], (app_doc, ["spec", "launchApps"])
    else:
        names, where = list(image.launch_apps), (cluster_doc, ["spec", "image"])
    app_configs = {c["name"]: c for c in app_spec.get("configs") or ()}
    deletes = {
        name: tuple(c["delete"]["cmds"]) for name, c in app_configs.items() if c.get("delete")
    }
    if user_cmds or (image.launch_cmds and where[1][-1] == "image"):
        return user_cmds or image.launch_cmds, (), deletes
    by_name = {app.name: app for app in image.apps}
    launched = []
    for i, name in enumerate(names):
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            problems.at(
                where[0], where[1] + [i], f"{image.name} has no app {name!r} (apps: {known})"
            )
            continue
        launch = applications.app_launch(image, by_name[name], app_configs.get(name))
        values = {**cluster_env, **launch.env}
        for missing in templates.missing_keys(Path(launch.folder), values):
            problems.at(
                cluster_doc,
                ["spec", "image"],
                f"app {name}: template {missing} (set it in spec.env, APPENV or the "
                f"Application's configs env)",
            )
        launched.append(launch)
    for name in app_configs:
        if name not in names and name not in deletes and app_doc:
            problems.at(
                app_doc,
                ["spec", "configs"],
                f"configs for {name!r}, which is not launched",
                warn=True,
            )
    constraint = image.labels.get(apps.KUBE_VERSION_LABEL)
    if constraint and not image.is_application:
        problem = apps.kube_version_problem(constraint, image.version)
        if problem:
            problems.at(cluster_doc, ["spec", "image"], f"{image.name}: {problem}")
    return (), tuple(launched), deletes


def check_rootfs_templates(doc: YamlDoc, image, hosts: dict[str, Host], problems) -> None:
    """Each host renders the rootfs' templates with its env: a value one lacks is an error."""
    if image.is_application:
        return
    found = templates.rootfs_templates(image.rootfs)
    if not found:
        return
    base = image.env
    lacking: dict[str, list[str]] = {}
    for ip, host in hosts.items():
        values = {**base, **host.env}
        for path, text in found.items():
            try:
                for key in templates.keys(text, path):
                    if key not in values:
                        lacking.setdefault(f"{path}: .{key} is not set", []).append(ip)
            except templates.TemplateError as e:
                lacking.setdefault(str(e), [])
    for problem, ips in lacking.items():
        on = f" for {', '.join(ips[:3])}{' ...' if len(ips) > 3 else ''}" if ips else ""
        problems.at(doc, ["spec", "image"], f"template {problem}{on} (set it in spec.env)")
