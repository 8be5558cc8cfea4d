"""The body of each command: load, lock, plan, render. Each returns the exit code."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from cluster import clusterfile
from cluster.durations import parse_duration
from cluster.errors import SealerError
from cluster.model import Cluster, Plan
from sealer_cli import render
from state import planfile
from state.document import host_record, is_empty, new_document
from state.location import backend_for


def run(args) -> int:
    from sealer_cli import apply_commands, drift_commands, image_commands, state_commands

    handler = {
        "apply": apply_commands.cmd_apply,
        "destroy": apply_commands.cmd_destroy,
        "run": apply_commands.cmd_run,
        "kubeconfig": apply_commands.cmd_kubeconfig,
        "sandbox": apply_commands.cmd_sandbox,
        "drift": drift_commands.cmd_drift,
        "state": state_commands.run,
        "validate": cmd_validate,
        "plan": cmd_plan,
        "graph": cmd_graph,
        "show": cmd_show,
        "import": cmd_import,
        "image": image_commands.run,
        "build": image_commands.cmd_build,
    }[args.command]
    return handler(args)


def load_cluster(path: str) -> Cluster:
    cluster, warnings = clusterfile.load(path)
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    return cluster


@contextmanager
def locked_state(args, cluster_name: str, operation: str):
    """The backend, locked for this command, and the state document as read under the lock."""
    backend = backend_for(cluster_name, args.state, getattr(args, "backend", None))
    with backend.lock(operation, parse_duration(args.lock_timeout, "--lock-timeout")):
        yield backend, backend.read(cluster_name)


def ssh_driver(args, cluster: Cluster, state: dict, pin_keys: bool = False):
    """Connections to the Clusterfile's hosts and to recorded hosts it no longer lists.

    pin_keys: refuse a host whose key differs from the one the state recorded at first contact
    (a refresh does not pin: it reports the change as drift instead).
    """
    from executors.driver import Driver, Timeouts

    hosts = {ip: host.ssh for ip, host in cluster.hosts.items()}
    for ip in state["hosts"]:  # hosts being removed: the cluster's SSH settings
        hosts.setdefault(ip, cluster.ssh)
    timeouts = Timeouts(
        connect=parse_duration(args.ssh_timeout, "--ssh-timeout"),
        command=parse_duration(args.command_timeout, "--command-timeout"),
        retries=max(0, getattr(args, "retries", 2)),
    )
    pinned = {ip: h.get("host_key", "") for ip, h in state["hosts"].items()} if pin_keys else {}
    return Driver(hosts, timeouts, pinned)


def make_plan(args, cluster: Cluster, state: dict) -> Plan:
    from planner import make_destroy_plan, make_plan

    if getattr(args, "destroy", False):
        return make_destroy_plan(state)
    return make_plan(cluster, state, max_unavailable=args.max_unavailable)


def cmd_validate(args) -> int:
    cluster = load_cluster(args.file)
    image = cluster.image
    print(
        f"{args.file}: valid. Cluster {cluster.name!r}: {len(cluster.masters)} master(s), "
        f"{len(cluster.workers)} worker(s); image {image.name} ({image.runtime} {image.version},"
        f" {image.digest[:19]})."
    )
    return 0


def cmd_plan(args) -> int:
    from sealer_cli.drift_commands import (
        drift_document,
        print_refresh_only,
        refresh_state,
        render_drift,
    )

    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "plan") as (backend, state):
        findings, live_state, warnings = refresh_state(args, cluster, state)
        plan = None if args.refresh_only else make_plan(args, cluster, live_state)
    if args.refresh_only:
        if args.json:
            print(json.dumps(drift_document(args, cluster, state, findings, warnings)))
        else:
            print_refresh_only(args, findings, warnings)
        return 2 if args.detailed_exitcode and findings else 0
    if args.out:
        planfile.save(
            args.out,
            plan.to_json(),
            {
                "clusterfile": str(Path(args.file).resolve()),
                "clusterfile_digest": cluster.source_digest,
                "image_digest": cluster.image.digest,
                "state": backend.describe(),
                "max_unavailable": args.max_unavailable,
            },
        )
    if args.json:
        document = plan.to_json()
        document["drift"] = [f.to_json() for f in findings]
        # One write: streaming json.dump makes ~200,000 small writes at 5,000 hosts.
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    else:
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        if findings:
            sys.stdout.write(render_drift(findings, render.use_colour()))
        sys.stdout.write(render.render_plan(plan, render.use_colour()))
        if args.out:
            print(
                f"\nSaved the plan to {args.out}. To perform exactly these actions, run: "
                f"sealer apply {args.out}"
            )
    if args.detailed_exitcode and (findings or not plan.empty):
        return 2
    return 0


def cmd_graph(args) -> int:
    from planner.graph import to_dot

    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "graph") as (_, state):
        plan = make_plan(args, cluster, state)
    sys.stdout.write(to_dot(plan.actions, cluster.name))
    return 0


def cmd_show(args) -> int:
    if args.planfile:
        plan, _ = planfile.load(args.planfile)
        if args.json:
            print(json.dumps(plan, indent=1))
        else:
            sys.stdout.write(render.render_plan(Plan.from_json(plan), render.use_colour()))
        return 0
    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "show") as (backend, state):
        pass
    if args.json:
        print(json.dumps(state, indent=1))
    elif is_empty(state) and not state["serial"]:
        print(f"No state for cluster {cluster.name!r} yet ({backend.describe()}).")
    else:
        sys.stdout.write(render.render_state(state))
    return 0


def cmd_import(args) -> int:
    from planner.build import configs_digest
    from planner.records import env_digest

    cluster = load_cluster(args.file)
    with locked_state(args, cluster.name, "import") as (backend, state):
        if not is_empty(state):
            raise SealerError(
                f"{backend.describe()}: a state with {len(state['hosts'])} host(s) "
                f"already exists for cluster {cluster.name!r}; import only adopts a "
                f"cluster that has no state"
            )
        doc = new_document(cluster.name)
        doc["lineage"] = state["lineage"] if state["serial"] else doc["lineage"]
        doc["image"] = cluster.image.record()
        doc["bootstrap_master"] = cluster.masters[0]
        doc["configs_digest"] = configs_digest(cluster)
        for ip, host in cluster.hosts.items():
            doc["hosts"][ip] = host_record(
                roles=host.roles,
                labels=host.labels,
                taints=host.taints,
                env_digest=env_digest(host.env, doc["lineage"]),
                version=cluster.image.version,
                status="imported",
            )
        backend.write(doc, state)
    print(
        f"Imported cluster {cluster.name!r}: {len(cluster.hosts)} host(s) recorded in "
        f"{backend.describe()} without contacting them."
    )
    return 0
