"""One handler per command: argparse Namespace -> request -> operation -> render.

No rule of sealer lives here: the operations decide, this module only translates and shows.
Each handler returns the exit code.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import signal
import sys
from pathlib import Path

from cluster.durations import parse_duration
from cluster.errors import SealerError, UnreadHosts
from cluster.outputs import write_output
from cluster.sizes import parse_size
from sealer_cli.lazy import lazy
from sealer_cli.parser import version

# The operations load when a handler first uses them: `sealer plan` never pays for the
# modules of apply, build or the sandbox (and SSH, cryptography... behind them).
# The views and the model too: `sealer pull` starts in a tenth of a second.
text = lazy("views.text")
dot = lazy("views.dot")
progress = lazy("views.progress")
prometheus = lazy("views.prometheus")
model = lazy("cluster.model")
settings = lazy("operations.settings")
applying = lazy("operations.apply")
cert = lazy("operations.cert")
drift = lazy("operations.drift")
etcd = lazy("operations.etcd")
images = lazy("operations.images")
registries_ops = lazy("operations.image_registries")
import_cluster = lazy("operations.import_cluster")
kubeconfig = lazy("operations.kubeconfig")
output = lazy("operations.output")
plan = lazy("operations.plan")
registry = lazy("operations.registry")
run = lazy("operations.run")
sandbox = lazy("operations.sandbox")
show = lazy("operations.show")
state_edit = lazy("operations.state_edit")
verbs = lazy("operations.verbs")
kept = lazy("operations.connections")
states = lazy("operations.state_sync")


class ApplyFailed(SealerError):
    pass


# ---- from flags to requests ----


def state_ref(args):
    return settings.StateRef(
        path=args.state,
        backend_url=args.backend,
        lock_timeout=parse_duration(args.lock_timeout, "--lock-timeout"),
    )


def ssh_settings(args):
    return settings.SSHSettings(
        connect_timeout=parse_duration(args.ssh_timeout, "--ssh-timeout"),
        command_timeout=parse_duration(args.command_timeout, "--command-timeout"),
        retries=getattr(args, "retries", 2),
        persist=parse_duration(args.ssh_persist, "--ssh-persist"),
        retried=retry_tally(),
    )


def apply_request(args, **fields) -> applying.ApplyRequest:
    return applying.ApplyRequest(
        state=state_ref(args),
        ssh=ssh_settings(args),
        auto_approve=getattr(args, "auto_approve", False),
        refresh=getattr(args, "refresh", "true") == "true",
        refresh_only=getattr(args, "refresh_only", False),
        max_unavailable=getattr(args, "max_unavailable", "10%"),
        parallelism=args.parallelism,
        targets=host_list(getattr(args, "targets", ()), "--target"),
        replace=host_list(getattr(args, "replace", ()), "--replace"),
        skip_checks=tuple(getattr(args, "skip_checks", ())),
        drain=drain_policy(args),
        **fields,
    )


def drain_policy(args) -> model.DrainPolicy:
    if not hasattr(args, "drain_timeout"):
        return model.DrainPolicy()
    return model.DrainPolicy(
        timeout=parse_duration(args.drain_timeout, "--drain-timeout"),
        force=args.force,
        disable_eviction=args.disable_eviction,
        skip=args.no_drain,
    )


MAX_FLAG_RANGE = 4096


def host_list(values, flag: str) -> tuple[str, ...]:
    """Addresses from repeated or comma-separated flags, ranges A-B included (sealer's
    `--nodes 192.168.0.11-192.168.0.13`), in their canonical form."""
    hosts = []
    for value in values:
        for part in filter(None, (p.strip() for p in value.split(","))):
            first, sep, last = part.partition("-")
            try:
                start = ipaddress.ip_address(first.strip())
                end = ipaddress.ip_address(last.strip()) if sep else start
            except ValueError:
                raise SealerError(f"{flag} {part!r}: not an IP address or range A-B") from None
            count = int(end) - int(start) + 1
            if start.version != end.version or not 0 < count <= MAX_FLAG_RANGE:
                raise SealerError(f"{flag} {part!r}: not a range of at most {MAX_FLAG_RANGE}")
            hosts += [str(start + n) for n in range(count)]
    return tuple(dict.fromkeys(hosts))


def listener_for(args):
    if getattr(args, "json", False):
        return progress.JsonEvents()
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
        return progress.LiveEvents()
    return progress.PlainEvents()


# ---- validate, plan, graph, show, import ----


def cmd_validate(args) -> int:
    sys.stdout.write(text.render_validated(args.file, show.validate(args.file, progress.Console())))
    return 0


def plan_request(args) -> plan.PlanRequest:
    return plan.PlanRequest(
        clusterfile=args.file,
        state=state_ref(args),
        ssh=ssh_settings(args) if hasattr(args, "ssh_timeout") else settings.SSHSettings(),
        refresh=getattr(args, "refresh", "true") == "true",
        refresh_only=getattr(args, "refresh_only", False),
        destroy=getattr(args, "destroy", False),  # `sealer check` has neither flag
        max_unavailable=getattr(args, "max_unavailable", "10%"),
        out=getattr(args, "out", None),
        targets=host_list(getattr(args, "targets", ()), "--target"),
        replace=host_list(getattr(args, "replace", ()), "--replace"),
        skip_checks=tuple(getattr(args, "skip_checks", ())),
    )


def cmd_check(args) -> int:
    result = plan.plan(plan_request(args), progress.Console())
    for warning in result.warnings:
        progress.Console().warning(warning)
    print(
        f"Checked {len(result.checked)} host(s) that the plan joins or changes: no check blocks it."
    )
    return 0


def cmd_plan(args) -> int:
    try:
        result = plan.plan(plan_request(args), progress.Console())
    except UnreadHosts as e:  # shown with the drift the refresh did find, then the error
        if args.json:
            print(json.dumps(text.unread_document(e)))
        elif e.findings:
            sys.stdout.write(text.render_drift(e.findings, text.use_colour()))
        raise
    if args.refresh_only:
        _show_drift(args, result.cluster, result.state, result.findings, result.warnings)
        return 2 if args.detailed_exitcode and result.findings else 0
    if not args.json:
        for warning in result.warnings:
            progress.Console().warning(warning)
    sys.stdout.write(text.render_plan_result(result, args.json, text.use_colour(), args.out))
    return 2 if args.detailed_exitcode and result.has_changes else 0


def _show_drift(args, cluster, state, findings, warnings) -> None:
    if args.json:
        print(json.dumps(text.drift_document(cluster, state, findings, warnings)))
    else:
        progress.Console().refreshed(findings, warnings)


def cmd_graph(args) -> int:
    made = plan.graph(plan_request(args), progress.Console())
    sys.stdout.write(dot.to_dot(made.actions, made.cluster))
    return 0


def cmd_show(args) -> int:
    if args.planfile:
        document, saved = show.saved_plan(args.planfile)
        if args.json:
            print(json.dumps(document, indent=1))
        else:
            sys.stdout.write(text.render_plan(saved, text.use_colour()))
        return 0
    shown = show.show_state(_state_request(args), progress.Console())
    if args.json:
        print(json.dumps(shown.doc, indent=1))
    elif shown.state.is_empty and not shown.state.serial:
        print(f"No state for cluster {shown.state.cluster!r} yet ({shown.where}).")
    else:
        sys.stdout.write(text.render_state(shown.state))
    return 0


def cmd_import(args) -> int:
    if args.discover:
        return _discover(args)
    if args.master or args.image:
        raise SealerError("--master and --image go with --discover")
    request = import_cluster.ImportRequest(args.file, state_ref(args))
    done = import_cluster.import_cluster(request, progress.Console())
    print(
        f"Imported cluster {done.cluster!r}: {done.hosts} host(s) recorded in "
        f"{done.where} without contacting them."
    )
    return 0


def _discover(args) -> int:
    if not args.master or not args.image:
        raise SealerError("import --discover needs --master IP and --image IMAGE")
    args.passwd = None
    request = import_cluster.DiscoverRequest(
        master=host_list([args.master], "--master")[0],
        image=args.image,
        clusterfile=args.file,
        name=args.name,
        ssh=model.SSH(
            user=args.user,
            password=_password(args),
            key_file=args.pk or "",
            key_passphrase=os.environ.get("SEALER_SSH_KEY_PASSPHRASE", ""),
            port=args.port,
        ),
        settings=ssh_settings(args),
        state=state_ref(args),
    )
    found = import_cluster.discover_and_import(request, progress.Console())
    print(
        f"Imported cluster {found.imported.cluster!r} from {request.master}: "
        f"{len(found.masters)} master(s), {len(found.workers)} worker(s), recorded in "
        f"{found.imported.where}; its Clusterfile is {found.clusterfile}. "
        f"Run `sealer plan -f {found.clusterfile}` to check it."
    )
    return 0


# ---- apply, destroy, run ----


def cmd_apply(args) -> int:
    saved = args.source and show.is_plan_file(args.source)
    if args.source and not saved:
        args.file = args.source
    if saved and (args.targets or args.replace):
        raise SealerError(
            f"{args.source}: a saved plan is applied as it is; give --target or "
            "--replace to `sealer plan --out` instead"
        )
    request = apply_request(args, clusterfile=args.file, plan_file=args.source if saved else None)
    return _applied(args, lambda listener: applying.apply(request, listener), request)


def cmd_destroy(args) -> int:
    request = apply_request(args, clusterfile=args.file)
    return _applied(args, lambda listener: applying.destroy(request, listener), request)


def cmd_run(args) -> int:
    request = run.RunRequest(
        image=args.image,
        masters=_ips(args.masters),
        nodes=_ips(args.nodes),
        clusterfile=args.run_clusterfile,
        apps=tuple(a.strip() for a in args.apps.split(",") if a.strip()),
        cmds=tuple(args.cmds),
        name=args.name,
        user=args.user,
        password=_password(args),
        key_file=args.pk or "",
        key_passphrase=_passphrase(args),
        port=args.port,
        env=tuple(args.env),
        apply=apply_request(args),
    )
    return _applied(args, lambda listener: run.run(request, listener).applied, request.apply)


def _password(args) -> str:
    """--passwd-file, $SEALER_SSH_PASSWORD, or --passwd (which any user can read in `ps`)."""
    if args.passwd_file:
        try:
            with open(args.passwd_file, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise SealerError(f"--passwd-file {args.passwd_file}: cannot read: {e}") from None
    return _flag_secret(
        args.passwd, "--passwd", "SEALER_SSH_PASSWORD", "--passwd-file or SEALER_SSH_PASSWORD"
    )


def _passphrase(args) -> str:
    return _flag_secret(
        args.pk_passwd, "--pk-passwd", "SEALER_SSH_KEY_PASSPHRASE", "SEALER_SSH_KEY_PASSPHRASE"
    )


def _flag_secret(value: str | None, flag: str, variable: str, instead: str) -> str:
    """A secret given on the command line (warned: any user sees it in `ps`), else the
    environment variable's."""
    if value:
        progress.Console().warning(
            f"{flag} shows its secret to every user of this machine (ps); use {instead}"
        )
        return value
    return os.environ.get(variable, "")


def cmd_verb(args) -> int:
    """scale-up, delete, upgrade: edit the Clusterfile, then plan and apply it."""
    request = verbs.VerbRequest(
        apply=apply_request(args, clusterfile=args.file),
        masters=host_list([getattr(args, "masters", "")], "--masters"),
        nodes=host_list([getattr(args, "nodes", "")], "--nodes"),
        image=getattr(args, "image", ""),
        all=getattr(args, "all", False),
    )
    operation = {"scale-up": verbs.scale_up, "delete": verbs.delete, "upgrade": verbs.upgrade}
    chosen = operation[args.command]
    return _applied(args, lambda listener: chosen(request, listener), request.apply)


def _ips(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _applied(args, operation, request: applying.ApplyRequest) -> int:
    """Run an apply-like operation under the signal handlers, then report how it ended."""
    listener = listener_for(args)
    with _stop_on_signals(request.stop) as received:
        result = operation(listener)
    if result.plan is None:  # refresh-only
        if result.accepted:
            print(f"Accepted {result.accepted} finding(s) into the state.")
        return 0
    if args.json:
        listener.emit_line(
            {"type": "change_summary", "changes": {**result.done, "operation": result.operation}}
        )
    name = signal.Signals(received[0]).name if received else None
    report = text.apply_report(result, name)
    if report:
        error = ApplyFailed(report)
        if received:
            error.exit_code = 128 + received[0]  # 130 for SIGINT, 143 for SIGTERM
        raise error
    if result.outcome is not None and not args.json:
        sys.stdout.write(text.render_applied(result))
    return 0


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


# ---- drift, kubeconfig ----


def cmd_drift(args) -> int:
    request = drift.DriftRequest(args.file, state_ref(args), ssh_settings(args))
    try:
        result = drift.check_drift(request, progress.Console())
    except SealerError as e:
        if args.prometheus:
            prometheus.write_prometheus(
                Path(args.prometheus), getattr(e, "cluster", "unknown"), [], False
            )
        raise
    if args.prometheus:
        prometheus.write_prometheus(
            Path(args.prometheus),
            result.cluster,
            result.findings,
            success=True,
            cert_expiry=result.cert_expiry,
        )
    _show_drift(args, result.cluster, result.state, result.findings, result.warnings)
    return 2 if result.findings else 0


def cmd_kubeconfig(args) -> int:
    request = kubeconfig.KubeconfigRequest(args.file, state_ref(args), ssh_settings(args))
    fetched = kubeconfig.fetch_kubeconfig(request, progress.Console())
    if not args.output:
        sys.stdout.write(fetched.text)
        return 0
    write_output(args.output, fetched.text)  # the kubeconfig is a secret: 0600, no link
    print(
        f"Wrote the admin kubeconfig of {fetched.cluster!r} (from {fetched.source}) to "
        f"{args.output}"
    )
    return 0


def cmd_cert(args) -> int:
    names = tuple(args.alt_names.split(","))
    request = cert.CertRequest(args.file, names, state_ref(args), ssh_settings(args))
    result = cert.add_alt_names(request, progress.Console())
    print(
        f"The apiserver certificate of {result.cluster!r} now also names "
        f"{', '.join(result.alt_names)} on {len(result.masters)} master(s)."
    )
    return 0


def cmd_etcd(args) -> int:
    request = etcd.EtcdRequest(args.file, state_ref(args), ssh_settings(args))
    if args.etcd_command == "backup":
        snapshot = etcd.backup(request, progress.Console())
        write_output(args.output, snapshot.data)  # it holds the cluster's secrets
        print(
            f"Saved an etcd snapshot of {snapshot.cluster!r} from {snapshot.source} to "
            f"{args.output} ({len(snapshot.data)} bytes)."
        )
        return 0
    try:
        data = Path(args.snapshot).read_bytes()
    except OSError as e:
        raise SealerError(f"{args.snapshot}: {e.strerror}") from None
    masters = etcd.restore(request, data, progress.Console())
    print(f"Restored etcd on {len(masters)} master(s) from {args.snapshot}: {', '.join(masters)}.")
    return 0


def cmd_registry(args) -> int:
    request = registry.PruneRequest(args.file, state_ref(args), ssh_settings(args))
    result = registry.prune(request, progress.Console())
    for ip, (before, after) in result.blobs.items():
        print(f"{ip}: {before - after} of {before} blob files removed")
    return 0


# ---- state ----


def _state_request(args) -> states.StateRequest:
    return states.StateRequest(args.file, getattr(args, "cluster", None), state_ref(args))


def cmd_state(args) -> int:
    request, console = _state_request(args), progress.Console()
    if args.state_command == "list":
        listed = state_edit.list_hosts(request, console)
        sys.stdout.write(text.render_host_list(listed.state, listed.where))
    elif args.state_command == "rm":
        ips = host_list(args.ips, "state rm")
        edited = state_edit.remove_hosts(request, ips, console)
        print(
            f"Removed {len(edited.removed)} host(s) from {edited.where} (serial "
            f"{edited.state.serial}); nothing was run on them. Take them out of the "
            f"Clusterfile too."
        )
    elif args.state_command == "mv":
        old = host_list([args.old_ip], "state mv")[0]
        edited = state_edit.move_host(request, old, args.new_ip, console)
        print(f"Moved {old} to {args.new_ip} in {edited.where} (serial {edited.state.serial}).")
    elif args.state_command == "forget-host-key":
        old = states.forget_host_key(request, args.ip, console)
        print(
            f"Forgot the host key of {args.ip} ({old or '(none)'}); the key seen at the next "
            f"contact will be recorded."
        )
    elif args.state_command == "pull":
        sys.stdout.write(json.dumps(states.pull(request, console, args.serial), indent=1) + "\n")
    elif args.state_command == "push":
        pushed = states.push(request, args.path, args.force, console)
        if not pushed.changed:
            print(f"{pushed.where}: already holds this state (serial {pushed.state.serial}).")
        else:
            print(
                f"Pushed {args.path} to {pushed.where}: lineage {pushed.state.lineage}, "
                f"serial {pushed.state.serial}, {len(pushed.state.hosts)} host(s)."
            )
    else:  # versions
        listed = states.versions(request, console)
        sys.stdout.write(text.render_versions(listed.current, listed.earlier))
    return 0


def cmd_output(args) -> int:
    document = output.outputs(_state_request(args), progress.Console())
    if args.json:
        print(json.dumps(document, indent=1))
    else:
        sys.stdout.write(text.render_outputs(document))
    return 0


def cmd_version(args) -> int:
    print(f"sealer {version()}")
    return 0


# ---- images and the sandbox ----


def cmd_build(args) -> int:
    request = images.BuildRequest(
        args.context,
        args.tag,
        args.file,
        tuple(args.build_arg),
        args.no_cache,
        run_timeout=parse_duration(args.run_timeout, "--run-timeout"),
        memory=parse_size(args.memory, "--memory"),
        image_type=args.image_type,
        collect_images=args.build_mode == "all",
        ignored_image_list=args.ignored_image_list,
        platform=args.platform,
    )
    result = images.build(request)
    print(
        f"{result.steps} step(s): {result.executed} layer(s) built, {result.cached} from the cache."
    )
    return 0


def cmd_image(args) -> int:
    """`sealer image ...`: the older spellings of load, images, inspect, save and rmi."""
    command = args.image_command
    if command == "load":
        for name in images.load(args.path, args.name, args.force):
            print(f"Loaded {name}")
    elif command == "ls":
        return cmd_images(args)
    elif command == "inspect":
        inspected = images.inspect(args.name)
        if args.json:
            print(json.dumps(inspected.to_json(), indent=1))
        else:
            sys.stdout.write(text.render_image(inspected))
    elif command == "save":
        images.save([args.name], args.output)
        print(f"Saved {args.name} to {args.output}")
    else:  # rm
        return cmd_rmi(args)
    return 0


def _tls_verify(args) -> bool:
    return args.tls_verify != "false"


def cmd_login(args) -> int:
    if args.password and args.password_stdin:
        raise SealerError("login: give the password with -p or --password-stdin, not both")
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password:
        print("Warning: -p puts the password on the command line, where ps shows it; "
              "prefer --password-stdin", file=sys.stderr)  # fmt: skip
    name = registries_ops.login(args.registry, args.username, password, _tls_verify(args))
    print(f"Login Succeeded: {name}")
    return 0


def cmd_logout(args) -> int:
    print(f"Removed login credentials for {registries_ops.logout(args.registry)}")
    return 0


def cmd_pull(args) -> int:
    name, fetched, digest, platforms = registries_ops.pull(
        args.ref, args.policy, args.platform, _tls_verify(args)
    )
    if args.quiet:
        print(digest)
    else:
        what = "Pulled" if fetched else "Already in the store:"
        print(f"{what} {name} ({digest}; {', '.join(platforms)})")
    return 0


def cmd_push(args) -> int:
    sent = registries_ops.push(args.ref, args.destination, _tls_verify(args))
    print(f"Pushed {sent}")
    return 0


def cmd_tag(args) -> int:
    for target in registries_ops.tag(args.source, args.targets):
        print(f"Tagged {target}")
    return 0


def cmd_images(args) -> int:
    sys.stdout.write(text.render_image_list(*images.list_images()))
    return 0


def cmd_rmi(args) -> int:
    for name in args.names:
        images.remove(name)
        print(f"Removed {name}")
    return 0


def cmd_inspect(args) -> int:
    print(json.dumps(images.inspect(args.name, args.platform).to_json(), indent=1))
    return 0


def cmd_save(args) -> int:
    saved = images.save(args.names, args.output, args.format)
    print(f"Saved {', '.join(saved)} to {args.output} ({args.format})")
    return 0


def cmd_load(args) -> int:
    for name in images.load(args.input, args.name):
        print(f"Loaded {name}")
    return 0


def cmd_sandbox(args) -> int:
    if args.sandbox_command == "up":
        net = sandbox.Network(args.net, args.rate, args.delay, args.operator_rate)
        started = sandbox.up(args.count, args.image, args.masters, net)
        print(
            f"# {started.count} sandbox hosts up: {started.first}..{started.last}; "
            f"this Clusterfile is also in {started.saved_to}",
            file=sys.stderr,
        )
        sys.stdout.write(started.clusterfile)
    elif args.sandbox_command == "down":
        stopped, registry_stopped = sandbox.down()
        print(f"Stopped {stopped} sandbox host(s).")
        if registry_stopped:
            print("Stopped the sandbox registry.")
    elif args.sandbox_command == "registry":
        served = sandbox.registry(args.port)
        state = "started" if served.started else "already running"
        print(f"Sandbox registry {state} on {served.address}, serving:")
        for name in served.images:
            print(f"  {name}")
    elif args.sandbox_command == "arch":
        if bool(args.machine) == bool(args.reset):
            raise SealerError("sandbox arch: give a MACHINE (e.g. aarch64), or --reset")
        name = sandbox.report_machine(args.host, "" if args.reset else args.machine)
        print(f"{name} reports {args.machine or 'its real architecture'} to uname -m")
    elif args.sandbox_command == "fake":
        swap, memory, clock = _fakes(args)
        name = sandbox.fake(args.host, swap, memory, clock)
        print(f"{name} now reports what was asked (sandbox only: sealer sandbox fake --reset)")
    elif args.sandbox_command == "private":
        for host in args.hosts:
            name = sandbox.make_private(host, not args.reset)
            state = "reachable from this machine again" if args.reset else "private"
            print(f"{name} is {state}")
    else:
        sys.stdout.write(text.render_sandbox(sandbox.describe()))
    return 0


def _fakes(args) -> tuple[int | None, int | None, int | None]:
    """--swap, --memory (sizes, in KiB) and --clock; --reset: 0 for each (the real ones)."""
    if args.reset:
        if args.swap or args.memory or args.clock is not None:
            raise SealerError("sandbox fake: --reset takes nothing else")
        return 0, 0, 0
    if not (args.swap or args.memory or args.clock is not None):
        raise SealerError("sandbox fake: give --swap, --memory, --clock or --reset")
    from cluster.sizes import parse_size

    swap = parse_size(args.swap, "--swap") // 1024 if args.swap else None
    memory = parse_size(args.memory, "--memory") // 1024 if args.memory else None
    return swap, memory, args.clock


def cmd_connections(args) -> int:
    if args.connections_command == "ls":
        sys.stdout.write(text.render_connections(kept.listing()))
    else:
        print(f"Closed {kept.close(args.hosts)} connection(s).")
    return 0


HANDLERS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "check": cmd_check,
    "graph": cmd_graph,
    "show": cmd_show,
    "import": cmd_import,
    "apply": cmd_apply,
    "destroy": cmd_destroy,
    "run": cmd_run,
    "scale-up": cmd_verb,
    "delete": cmd_verb,
    "upgrade": cmd_verb,
    "drift": cmd_drift,
    "kubeconfig": cmd_kubeconfig,
    "cert": cmd_cert,
    "etcd": cmd_etcd,
    "registry": cmd_registry,
    "state": cmd_state,
    "output": cmd_output,
    "version": cmd_version,
    "build": cmd_build,
    "image": cmd_image,
    "login": cmd_login,
    "logout": cmd_logout,
    "pull": cmd_pull,
    "push": cmd_push,
    "tag": cmd_tag,
    "images": cmd_images,
    "rmi": cmd_rmi,
    "inspect": cmd_inspect,
    "save": cmd_save,
    "load": cmd_load,
    "sandbox": cmd_sandbox,
    "connections": cmd_connections,
}


def run_command(args) -> int:
    return HANDLERS[args.command](args)


@functools.cache
def retry_tally():
    """This command's count of connection attempts tried again (one per process)."""
    return settings.RetryTally()


def report_retries() -> None:
    """Transient failures that later attempts overcame are said once, at the end, on
    stderr: a run that needed them is worth knowing about even when it succeeded."""
    if not retry_tally.cache_info().currsize or not len(retry_tally()):
        return
    print(text.render_retries(retry_tally().by_host()), file=sys.stderr)
