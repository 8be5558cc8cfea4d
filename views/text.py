"""Human output: Terraform-style plans and state summaries. Colour only on a TTY, never under NO_COLOR."""

from __future__ import annotations

import json
import os
import sys

from cluster import actions
from cluster.actions import Kind
from cluster.model import Action, Finding, Plan
from cluster.records import State

SYMBOLS = {"add": "+", "change": "~", "destroy": "-"}
LEGEND = {"add": "create", "change": "update in-place", "destroy": "destroy"}
COLOURS = {"add": "32", "change": "33", "destroy": "31", "bold": "1"}


def use_colour(stream=sys.stdout) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


class Painter:
    def __init__(self, colour: bool):
        self.colour = colour

    def __call__(self, text: str, style: str) -> str:
        return f"\033[{COLOURS[style]}m{text}\033[0m" if self.colour else text


def change_type(action: Action) -> str | None:
    return action.change


def render_plan(plan: Plan, colour: bool = False) -> str:
    paint = Painter(colour)
    if plan.empty and plan.targets:
        head = paint("No changes", "bold") + f" for {', '.join(plan.targets)}."
        return "\n".join([head, *_targeting_warning(plan, paint)]) + "\n"
    if plan.empty:
        return paint("No changes.", "bold") + " Your cluster matches the Clusterfile.\n"
    out: list[str] = []
    used = []
    for action in plan.actions:
        kind = change_type(action)
        if kind and kind not in used:
            used.append(kind)
    out.append(
        "Sealer used the Clusterfile to generate the following execution plan. "
        "Actions are indicated with the following symbols:"
    )
    for kind in ("add", "change", "destroy"):
        if kind in used:
            out.append(f"  {paint(SYMBOLS[kind], kind)} {LEGEND[kind]}")
    out.append("")
    if plan.changes:
        out.append(f'Cluster "{plan.cluster}" changes:')
        out += [f"  ~ {line}" for line in plan.changes]
        out.append("")
    if plan.replaced:
        out.append(paint("Hosts to replace:", "bold"))
        out += [
            f"  {paint('-/+', 'destroy')} {ip} (reset, then joined again)" for ip in plan.replaced
        ]
        out.append("")
    out.append(paint("Sealer will perform the following actions:", "bold"))
    batches = 0
    for action in plan.actions:
        if action.kind == Kind.UPGRADE_BATCH:
            batches += 1
            continue
        out.append("")
        out += _action_block(action, paint)
    if batches:
        out.append("")
        out.append(f"  # workers upgrade in {batches + 1} batches, each after the previous one")
    s = plan.summary
    out.append("")
    out.append(
        paint("Plan:", "bold") + f" {s['add']} to add, {s['change']} to change, "
        f"{s['destroy']} to destroy."
    )
    out += _targeting_warning(plan, paint)
    return "\n".join(out) + "\n"


def _targeting_warning(plan: Plan, paint: Painter) -> list[str]:
    """Terraform's warning: a targeted plan may not be all the Clusterfile asks for."""
    if not plan.targets:
        return []
    lines = [
        "",
        paint("Warning: host targeting is in effect", "bold"),
        f"  Only the actions on {', '.join(plan.targets)} and what they need are planned; the "
        "state may still differ from the Clusterfile afterwards. Use --target for exceptional "
        "cases (a broken host), not routinely.",
    ]
    if plan.left_out:
        lines.append(f"  Left out ({len(plan.left_out)}):")
        lines += [f"    {action_id}" for action_id in plan.left_out[:20]]
        if len(plan.left_out) > 20:
            lines.append(f"    ... and {len(plan.left_out) - 20} more")
    return lines


def _action_block(action: Action, paint: Painter) -> list[str]:
    kind = change_type(action)
    symbol = paint(SYMBOLS[kind], kind)
    verb = {
        "add": "will be created",
        "change": "will be updated in-place",
        "destroy": "will be destroyed",
    }[kind]
    reason = action.spec.explain(action.details)
    lines = [f"  # {action.id} {verb}" + (f" ({reason})" if reason else "")]
    lines.append(f'  {symbol} {action.kind} "{action.host}" {{')
    fields = [("roles", json.dumps(list(action.roles))), *FIELDS[action.kind](action.details)]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        # An in-place change marks only what changes; roles stay as they are.
        mark = " " if kind == "change" and name == "roles" else symbol
        lines.append(f"      {mark} {name.ljust(width)} = {value}")
    lines.append("    }")
    return lines


# ---- each kind's fields in a plan block (besides its roles) ----

Fields = list[tuple[str, str]]


def _node_fields(d: actions.NodeDetails) -> Fields:
    fields = [("version", json.dumps(d.version))]
    if d.labels:
        fields.append(("labels", _map(d.labels)))
    if d.taints:
        fields.append(("taints", json.dumps(list(d.taints))))
    if d.registry:
        fields.append(("registry", json.dumps(d.registry)))
    return fields


def _commands(commands) -> Fields:
    return [(f"cmd[{i}]", json.dumps(c)) for i, c in enumerate(commands)]


def _sync_fields(d: actions.SyncRootfsDetails) -> Fields:
    fields = []
    before, after = (d.from_digest or "")[:19], d.to_digest[:19]
    if before != after:  # a rebuilt image, or a tag that now names other content
        named = f"{d.image} " if d.image else ""
        fields.append(("image", f"{named}({before}…→{after}…)"))
    if d.configs:
        fields.append(("configs", json.dumps(d.configs)))
    return fields


def _upgrade_fields(d: actions.UpgradeDetails) -> Fields:
    return [("version", f"{json.dumps(d.from_version)} -> {json.dumps(d.to_version)}")]


def _no_fields(d) -> Fields:
    return []


FIELDS = {
    Kind.INIT_CLUSTER: _node_fields,
    Kind.JOIN_MASTER: _node_fields,
    Kind.JOIN_WORKER: _node_fields,
    Kind.DELETE_MASTER: lambda d: [("version", json.dumps(d.version))],
    Kind.DELETE_WORKER: lambda d: [("version", json.dumps(d.version))],
    Kind.RESET_CLUSTER: _no_fields,
    Kind.UPGRADE_MASTER: _upgrade_fields,
    Kind.UPGRADE_WORKER: _upgrade_fields,
    Kind.UPGRADE_BATCH: _no_fields,  # not shown as a block: counted under the plan
    Kind.RECONFIGURE_MASTER: _no_fields,
    Kind.UPDATE_HOST: lambda d: [
        (line.split(":", 1)[0], line.split(":", 1)[1].strip()) for line in d.changes
    ],
    Kind.UPDATE_ENDPOINT: lambda d: [("endpoint", f"-> {json.dumps(d.to_master)}")],
    Kind.SYNC_ROOTFS: _sync_fields,
    Kind.SERVE_REGISTRY: lambda d: [("registry", json.dumps(d.endpoint))],
    Kind.STOP_REGISTRY: _no_fields,
    Kind.CONFIGURE_REGISTRY: lambda d: [("registry", json.dumps(d.endpoint))],
    Kind.LAUNCH_APPS: lambda d: _commands(d.commands),
    Kind.LAUNCH_APP: lambda d: [
        ("app", json.dumps(d.app)),
        ("image", json.dumps(d.image)),
        *_commands(d.commands),
        ("digest", json.dumps(d.digest[:19])),
    ],
    Kind.REMOVE_APP: lambda d: [("app", json.dumps(d.app)), *_commands(d.commands)],
}


def _map(values: dict) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + "}"


def render_state(state: State) -> str:
    image = state.image or {}
    lines = [
        f"cluster:   {state.cluster}",
        f"lineage:   {state.lineage}",
        f"serial:    {state.serial}",
        f"image:     {image.get('name', '-')} ({image.get('runtime', '-')} "
        f"{image.get('version', '-')}, {image.get('digest', '-')[:19]})",
        f"bootstrap: {state.bootstrap_master or '-'}",
        f"updated:   {state.updated_at or '-'}",
        f"hosts:     {len(state.hosts)}",
    ]
    serving = [ip for ip, h in state.hosts.items() if h.registry_served]
    if serving:
        lines.append(f"registry:  served by {', '.join(serving)}")
    if state.hosts:
        lines.append("")
        lines.append(f"  {'IP':<39} {'ROLES':<14} {'VERSION':<10} {'STATUS':<10} HOSTNAME")
        for ip, h in state.hosts.items():
            lines.append(
                f"  {ip:<39} {','.join(h.roles):<14} {h.version:<10} {h.status:<10} {h.hostname}"
            )
    if state.apps:
        lines.append("")
        lines.append(f"  {'APP':<24} {'DIGEST':<20} IMAGE")
        for name, app in sorted(state.apps.items()):
            lines.append(f"  {name:<24} {app.get('digest', '')[:19]:<20} {app.get('image', '')}")
    return "\n".join(lines) + "\n"


def render_plan_result(result, as_json: bool, colour: bool, saved_to: str | None) -> str:
    """`sealer plan` (an operations.plan.PlanResult): the drift it found, then the plan."""
    if as_json:
        document = result.plan.to_json()
        document["drift"] = [f.to_json() for f in result.findings]
        # One string, one write: streaming json.dump makes ~200,000 writes at 5,000 hosts.
        return json.dumps(document, separators=(",", ":")) + "\n"
    out = render_drift(result.findings, colour) if result.findings else ""
    out += render_plan(result.plan, colour)
    if saved_to:
        out += (
            f"\nSaved the plan to {saved_to}. To perform exactly these actions, run: "
            f"sealer apply {saved_to}\n"
        )
    return out


# ---- drift ----


def render_drift(findings: list[Finding], colour: bool) -> str:
    paint = Painter(colour)
    lines = [paint("Note: the cluster has changed outside of sealer", "bold"), ""]
    for f in findings:
        lines.append(
            f"  {paint('!', 'change')} {f.kind:<24} {f.host:<16} expected "
            f"{_show(f.expected)}, found {_show(f.actual)}"
        )
    return "\n".join(lines) + "\n\n"


def _show(value) -> str:
    if value is None:
        return "nothing"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render_refresh_only(findings: list[Finding], colour: bool) -> str:
    if not findings:
        return "No drift. The cluster matches the state.\n"
    return render_drift(findings, colour) + (
        f"Drift: {len(findings)} finding(s). Run `sealer plan` to see the actions that "
        f"bring the cluster back, or `sealer apply --refresh-only` to accept the drift "
        f"into the state.\n"
    )


def render_unread(hosts: dict[str, str], colour: bool, joining: dict | None = None) -> str:
    """The hosts a refresh could not read (cluster.errors.UnreadHosts), one line each, and
    the hosts about to join that did not answer either."""
    paint = Painter(colour)
    lines = [paint("Sealer could not read these hosts, so there is no plan:", "bold"), ""]
    lines += [f"  {paint('?', 'destroy')} {ip}: unknown — {why}" for ip, why in hosts.items()]
    lines += [
        f"  {paint('?', 'destroy')} {ip}: about to join, no answer — {why}"
        for ip, why in (joining or {}).items()
    ]
    return "\n".join(lines) + "\n\n"


def render_retries(by_host: dict[str, dict[str, int]]) -> str:
    """The connection attempts tried again after transient failures, one line."""
    count = sum(sum(reasons.values()) for reasons in by_host.values())
    shown = []
    for host, reasons in list(by_host.items())[:5]:
        why = "; ".join(f"{n}x {reason}" if n > 1 else reason for reason, n in reasons.items())
        shown.append(f"{host} ({why})")
    more = f" and {len(by_host) - 5} more host(s)" if len(by_host) > 5 else ""
    return (
        f"Note: {count} SSH connection attempt(s) failed for a reason that passed, and were "
        f"tried again: {', '.join(shown)}{more}"
    )


def unread_document(error) -> dict:
    """`plan --json` when hosts could not be read (cluster.errors.UnreadHosts)."""
    return {
        "format_version": "1",
        "error": str(error),
        "unknown": [{"host": ip, "reason": why} for ip, why in error.hosts.items()]
        + [{"host": ip, "reason": why, "joining": True} for ip, why in error.joining.items()],
        "drift": [f.to_json() for f in error.findings],
    }


def drift_document(cluster: str, state: State, findings: list[Finding], warnings) -> dict:
    return {
        "format_version": "1",
        "cluster": cluster,
        "lineage": state.stored_lineage,
        "serial": state.serial,
        "drift": [f.to_json() for f in findings],
        "warnings": list(warnings),
    }


# ---- the end of an apply ----


def apply_report(result, signal_name: str | None = None) -> str | None:
    """What went wrong in an apply (operations.apply.ApplyResult), or None when all went well.

    signal_name: the run was stopped by that signal; running actions finished and were recorded.
    """
    outcome, word = result.outcome, result.operation
    if outcome is None or (outcome.ok and not signal_name):
        return None
    if signal_name:
        lines = [
            f"{word} interrupted: {len(outcome.done)} action(s) done and recorded; left "
            f"undone: {', '.join(outcome.not_started + outcome.skipped) or 'nothing'}"
        ]
        lines += [f"  failed:  {aid}: {error}" for aid, error in outcome.failed.items()]
        lines.append("Run `sealer apply` again to finish.")
        return "\n".join(lines)
    lines = [
        f"{word} failed: {len(outcome.done)} action(s) done and recorded, "
        f"{len(outcome.failed)} failed, {len(outcome.skipped)} skipped, "
        f"{len(outcome.not_started)} not started."
    ]
    lines += [f"  failed:  {aid}: {error}" for aid, error in outcome.failed.items()]
    lines += [f"  skipped: {aid}" for aid in outcome.skipped]
    lines.append("Run `sealer apply` again to finish: finished actions are not repeated.")
    return "\n".join(lines)


# ---- images ----


def render_image(inspected) -> str:
    """`sealer image inspect` (an operations.images.Inspected)."""
    image, labels = inspected.image, inspected.labels
    lines = [f"Name:     {image.name}", f"Digest:   {image.digest}"]
    if image.is_application:
        lines.append("Type:     application image (apps for a running cluster)")
    else:
        lines.append(f"Runtime:  {image.runtime} {image.version}")
    if inspected.build:
        built = inspected.build
        lines.append(f"Built:    {built.get('created', '?')} from {built.get('base', '?')}")
    lines.append("Labels:" + ("" if labels else "   (none)"))
    lines += [f"  {key}={value}" for key, value in sorted(labels.items())]
    lines.append("Apps:" + ("" if image.apps else "     (none)"))
    for app in image.apps:
        launched = " (launched)" if app.name in image.launch_apps else ""
        lines.append(f"  {app.name}: {app.type or 'by APPCMDS'}{launched}")
        lines += [f"    $ {command}" for command in app.launch_commands()]
    lines.append("Launch commands:" + ("" if image.launch_cmds else " (none)"))
    lines += [f"  {command}" for command in image.launch_cmds]
    lines.append("Container images:" + ("" if image.container_images else " (none)"))
    lines += [
        f"  {c.get('name')}  {c.get('digest', '')[:19]}  from {c.get('source')}"
        for c in image.container_images
    ]
    lines.append("Metadata:")
    lines += [
        f"  {line}"
        for line in json.dumps(inspected.metadata, indent=1, sort_keys=True).splitlines()
    ]
    return "\n".join(lines) + "\n"


def render_image_list(folder, records: list[dict]) -> str:
    if not records:
        return f"No images in {folder}. Pull one with: sealer pull REF, or load one: sealer load -i FILE\n"
    lines = [f"{'NAME':<44} {'DIGEST':<19}  {'SIZE':>9}  PLATFORMS"]
    for r in records:
        size = f"{r.get('size', 0) / 2**20:.1f} MiB" if r.get("size") else "-"
        lines.append(
            f"{r['name']:<44} {r['digest'][:19]:<19}  {size:>9}  {', '.join(r.get('platforms') or [])}"
        )
    return "\n".join(lines) + "\n"


# ---- state, sandbox ----


def render_versions(current: State, earlier: list[tuple[int, str, str]]) -> str:
    lines = [f"{'SERIAL':>6}  {'SAVED (UTC)':<20}  LINEAGE"]
    if current.serial:
        lines.append(f"{current.serial:>6}  {'(current)':<20}  {current.lineage}")
    lines += [f"{serial:>6}  {saved:<20}  {lineage}" for serial, lineage, saved in earlier]
    return "\n".join(lines) + "\n"


def render_sandbox(rows: list[dict]) -> str:
    if not rows:
        return "No sandbox hosts.\n"
    lines = []
    for row in rows:
        running = "running" if row["running"] else "stopped"
        sshd = "sshd up" if row["sshd"] else "sshd down"
        lines.append(
            f"{row['name']:<12} {row['address']:<14} {running:<8} {sshd:<10} {row['link']}"
        )
    return "\n".join(lines) + "\n"


def render_connections(rows: list[dict]) -> str:
    if not rows:
        return "No SSH connections kept.\n"
    lines = [f"{'HOST':<21} {'USER':<10} {'PID':<8} {'HOST KEY (pinned)':<51} STATE LINEAGE"]
    for row in rows:
        host = f"{row.get('host')}:{row.get('port')}"
        lines.append(
            f"{host:<21} {row.get('user', ''):<10} {row['pid']:<8} "
            f"{row.get('fingerprint', ''):<51} {row.get('lineage', '')}"
            + (f"  via bastion {row['via']}" if row.get("via") else "")
        )
    return "\n".join(lines) + "\n"


def render_validated(path: str, cluster) -> str:
    image = cluster.image
    return (
        f"{path}: valid. Cluster {cluster.name!r}: {len(cluster.masters)} master(s), "
        f"{len(cluster.workers)} worker(s); image {image.name} ({image.runtime} {image.version},"
        f" {image.digest[:19]}).\n"
    )


def render_applied(result) -> str:
    """The last line of an apply or destroy that ran and succeeded."""
    verb = "Destroy" if result.plan.destroy else "Apply"
    done = result.done
    return (
        f"\n{verb} complete! Resources: {done['add']} added, {done['change']} changed, "
        f"{done['destroy']} destroyed.\n"
    ) + (
        "\nWarning: applied changes may be incomplete: only the targeted hosts were changed; "
        "run a plan without --target to see what else the Clusterfile asks for.\n"
        if result.plan.targets
        else ""
    )


def render_host_list(state: State, where: str) -> str:
    if not state.hosts:
        return f"No hosts recorded for cluster {state.cluster!r} ({where}).\n"
    rows = [("HOST", "ROLES", "VERSION", "STATUS", "HOSTNAME")]
    for ip, r in state.hosts.items():
        role = ",".join(r.roles) + (" (bootstrap)" if ip == state.bootstrap_master else "")
        rows.append((ip, role, r.version or "-", r.status or "-", r.hostname or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def render_outputs(document: dict) -> str:
    """`sealer output`: KEY = VALUE, Terraform's way (lists and maps as JSON)."""
    width = max(len(key) for key in document)
    lines = []
    for key, value in document.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"{key.ljust(width)} = {shown}")
    return "\n".join(lines) + "\n"
