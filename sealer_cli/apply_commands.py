"""`sealer apply`, `destroy`, `run` and `kubeconfig`: the commands that reach hosts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from cluster import clusterfile
from cluster.errors import SealerError
from cluster.image import sealer_home
from cluster.model import Cluster, Plan
from sealer_cli import render
from sealer_cli.commands import load_cluster, locked_state, make_plan, ssh_driver
from state import planfile


class ApplyFailed(SealerError):
    pass


def _confirm(args, plan: Plan | None, action_word: str) -> None:
    """Terraform's rule: ask on a TTY; without one, refuse unless --auto-approve."""
    if args.auto_approve:
        return
    if not sys.stdin.isatty():
        raise SealerError(
            f"no TTY to ask for approval; pass --auto-approve to {action_word} "
            f"without asking (or apply a saved plan file)"
        )
    print(
        f"\nDo you want to {action_word} these actions?\n  Sealer will perform the actions "
        f"described above.\n  Only 'yes' will be accepted to approve.\n"
    )
    answer = input("  Enter a value: ").strip()
    if answer != "yes":
        raise SealerError(f"{action_word} cancelled.")


def _events(args, plan: Plan):
    from sealer_cli.progress import JsonEvents, LiveEvents, PlainEvents

    if args.json:
        return JsonEvents()
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
        return LiveEvents(len(plan.actions))
    return PlainEvents()


def _load_saved_plan(args) -> tuple[Plan, Cluster, dict]:
    saved, sources = planfile.load(args.target)
    cluster = load_cluster(sources["clusterfile"])
    if cluster.source_digest != sources["clusterfile_digest"]:
        raise SealerError(
            f"{args.target}: the Clusterfile {sources['clusterfile']} changed since "
            f"the plan was made; make a new plan"
        )
    if cluster.image.digest != sources["image_digest"]:
        raise SealerError(
            f"{args.target}: the ClusterImage changed since the plan was made; make a new plan"
        )
    return Plan.from_json(saved), cluster, sources


def _check_not_stale(plan: Plan, state: dict, path: str) -> None:
    current_lineage = state["lineage"] if state["serial"] else None
    if plan.lineage is not None and current_lineage is not None and plan.lineage != current_lineage:
        raise SealerError(
            f"Saved plan does not match the given state: {path} was made for "
            f"lineage {plan.lineage}, the state has {current_lineage}"
        )
    if plan.serial != state["serial"]:
        raise SealerError(
            f"Saved plan is stale: {path} can no longer be applied because the "
            f"state was changed by another operation after the plan was created "
            f"(plan serial {plan.serial}, state serial {state['serial']})"
        )


def cmd_apply(args) -> int:
    saved = args.target and planfile.is_plan_file(args.target)
    if args.target and not saved:
        args.file = args.target
    if saved:
        plan, cluster, _ = _load_saved_plan(args)
        args.auto_approve = True  # applying a saved plan is the approval
    else:
        cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "apply") as (backend, state):
        if saved:
            _check_not_stale(plan, state, args.target)
            return _execute(args, plan, cluster, backend, state, "apply")
        from sealer_cli.drift_commands import print_refresh_only, refresh_state, render_drift

        findings, live_state, warnings = refresh_state(args, cluster, state)
        if args.refresh_only:  # take the drift into the state, touch no host
            print_refresh_only(args, findings, warnings)
            if findings:
                _confirm(args, None, "accept")
                backend.write(live_state, state)
                print(f"Accepted {len(findings)} finding(s) into the state.")
            return 0
        if findings and not args.json:
            sys.stdout.write(render_drift(findings, render.use_colour()))
        plan = make_plan(args, cluster, live_state)
        return _execute(args, plan, cluster, backend, live_state, "apply")


def cmd_destroy(args) -> int:
    from planner import make_destroy_plan

    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "destroy") as (backend, state):
        plan = make_destroy_plan(state)
        return _execute(args, plan, cluster, backend, state, "destroy")


def _execute(args, plan: Plan, cluster: Cluster, backend, state: dict, word: str) -> int:
    if args.json:
        print(json.dumps({"type": "planned", "plan": plan.to_json()}))
    else:
        sys.stdout.write(render.render_plan(plan, render.use_colour()))
    if plan.empty:
        if args.json:
            print(
                json.dumps(
                    {"type": "change_summary", "changes": {**plan.summary, "operation": word}}
                )
            )
        return 0
    _confirm(args, plan, word)
    from executors.apply import Applier, ApplyOptions  # late: a no-op apply never loads SSH

    events = _events(args, plan)
    applier = Applier(
        plan,
        cluster,
        backend,
        state,
        ssh_driver(args, cluster, state, pin_keys=True),
        events,
        ApplyOptions(parallelism=args.parallelism),
    )
    context = events if hasattr(events, "__enter__") else contextlib.nullcontext()
    with context, _stop_on_signals(applier.stop) as received:
        outcome = applier.run_plan()
    done = set(outcome.done)
    counts = {"add": 0, "change": 0, "destroy": 0}
    for action in plan.actions:
        kind = render.change_type(action)
        if action.id in done and kind and action.host:
            counts[kind] += 1
    if args.json:
        print(json.dumps({"type": "change_summary", "changes": {**counts, "operation": word}}))
    if received:  # SIGINT / SIGTERM: running actions finished and were recorded
        lines = [
            f"{word} interrupted: {len(outcome.done)} action(s) done and recorded; left "
            f"undone: {', '.join(outcome.not_started + outcome.skipped) or 'nothing'}"
        ]
        lines += [f"  failed:  {aid}: {error}" for aid, error in outcome.failed.items()]
        lines.append("Run `sealer apply` again to finish.")
        error = ApplyFailed("\n".join(lines))
        error.exit_code = 128 + received[0]  # 130 for SIGINT, 143 for SIGTERM
        raise error
    if outcome.ok:
        if not args.json:
            verb = "Destroy" if plan.destroy else "Apply"
            print(
                f"\n{verb} complete! Hosts: {counts['add']} added, {counts['change']} changed, "
                f"{counts['destroy']} destroyed."
            )
        return 0
    lines = [
        f"{word} failed: {len(outcome.done)} action(s) done and recorded, "
        f"{len(outcome.failed)} failed, {len(outcome.skipped)} skipped, "
        f"{len(outcome.not_started)} not started."
    ]
    lines += [f"  failed:  {aid}: {error}" for aid, error in outcome.failed.items()]
    lines += [f"  skipped: {aid}" for aid in outcome.skipped]
    lines.append("Run `sealer apply` again to finish: finished actions are not repeated.")
    raise ApplyFailed("\n".join(lines))


@contextlib.contextmanager
def _stop_on_signals(stop):
    """SIGINT and SIGTERM stop new actions from starting; the running ones finish."""
    received: list[int] = []

    def on_signal(signum, frame):
        if not received:
            print(
                f"\n{signal.Signals(signum).name}: finishing the running actions, starting no "
                f"new one...",
                file=sys.stderr,
                flush=True,
            )
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_run(args) -> int:
    """Write a Clusterfile for the flags, then apply it (as sealer's own `run` does)."""
    import yaml

    if args.passwd and args.pk:
        raise SealerError("--passwd and --pk are alternatives; give one")
    folder = sealer_home() / "clusters" / args.name
    folder.mkdir(parents=True, exist_ok=True)
    ssh: dict = {"user": args.user, "port": str(args.port)}
    if args.passwd:  # never written to disk: the file names an environment variable
        os.environ["SEALER_RUN_SSH_PASSWORD"] = args.passwd
        ssh["passwd"] = "${SEALER_RUN_SSH_PASSWORD}"
    if args.pk:
        ssh["pk"] = str(Path(args.pk).expanduser().resolve())
    image = args.image
    if Path(image).exists():
        image = str(Path(image).resolve())
    hosts = [{"ips": _ips(args.masters), "roles": ["master"]}]
    if args.nodes:
        hosts.append({"ips": _ips(args.nodes), "roles": ["node"]})
    doc = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": args.name},
        "spec": {"image": image, "ssh": ssh, "hosts": hosts},
    }
    path = folder / "Clusterfile"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"Wrote {path}")
    args.file, args.target, args.auto_approve = str(path), None, True
    args.refresh, args.refresh_only = "true", False
    args.max_unavailable = "10%"
    return cmd_apply(args)


def _ips(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


KUBECONFIG_COMMANDS = {
    "kubernetes": "cat /etc/kubernetes/admin.conf",
    "k3s": "cat /etc/rancher/k3s/k3s.yaml",
    "k0s": "k0s kubeconfig admin",
}


def cmd_kubeconfig(args) -> int:
    cluster, _ = clusterfile.load(args.file)
    with locked_state(args, cluster.name, "kubeconfig") as (_, state):
        pass
    bootstrap = state.get("bootstrap_master")
    if not bootstrap:
        raise SealerError(
            f"cluster {cluster.name!r} has no bootstrap master in the state; "
            f"run `sealer apply` first"
        )
    runtime = (state.get("image") or {}).get("runtime", "kubernetes")
    driver = ssh_driver(args, cluster, state, pin_keys=True)
    try:
        text = driver.host(bootstrap).run(KUBECONFIG_COMMANDS[runtime]).stdout
    finally:
        driver.close()
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(f"Wrote the admin kubeconfig of {cluster.name!r} (from {bootstrap}) to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_sandbox(args) -> int:
    from sandbox import hosts as sandbox

    if args.sandbox_command == "up":
        started = sandbox.up(args.count)
        text = sandbox.clusterfile(args.count, args.image, masters=args.masters)
        path = sandbox.base() / "Clusterfile"
        path.write_text(text)
        print(
            f"# {len(started)} sandbox hosts up: {started[0].address}..{started[-1].address}; "
            f"this Clusterfile is also in {path}",
            file=sys.stderr,
        )
        sys.stdout.write(text)
    elif args.sandbox_command == "down":
        print(f"Stopped {sandbox.down()} sandbox host(s).")
    else:
        rows = sandbox.describe()
        if not rows:
            print("No sandbox hosts.")
        for row in rows:
            state = "running" if row["running"] else "stopped"
            ssh = "sshd up" if row["sshd"] else "sshd down"
            print(f"{row['name']:<12} {row['address']:<12} {state:<8} {ssh}")
    return 0
