"""`sealer`: parse the command line and dispatch. Every user-facing error is one line, exit 1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cluster.errors import InputError, SealerError

DESCRIPTION = """\
sealer brings a Kubernetes cluster (kubeadm, k3s or k0s) to the state written in a Clusterfile,
the way Terraform brings cloud resources to its configuration: validate, plan, apply.
"""

EPILOG = """\
examples:
  sealer validate -f Clusterfile
  sealer plan -f Clusterfile
  sealer plan -f Clusterfile --json --out plan.json
  sealer graph -f Clusterfile | dot -Tsvg > plan.svg
  sealer image load ./examples/images/k3s-v1.25.3 --name k3s:v1.25.3

environment: SEALER_HOME (default ~/.sealer), SEALER_STATE (state file), SEALER_BACKEND
(PostgreSQL URL), PGPASSWORD, NO_COLOR.
"""


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _sub(subparsers, name: str, summary: str, example: str, description: str = ""):
    return subparsers.add_parser(
        name,
        help=summary,
        description=(description or summary) + "\n",
        epilog="example:\n" + example,
        formatter_class=Formatter,
    )


def _clusterfile(p) -> None:
    p.add_argument(
        "-f",
        "--file",
        default="Clusterfile",
        metavar="CLUSTERFILE",
        help="the Clusterfile (default: ./Clusterfile)",
    )


def _cluster_name(p) -> None:
    _clusterfile(p)
    p.add_argument(
        "--cluster",
        metavar="NAME",
        help="the cluster's name, instead of reading it from the Clusterfile",
    )


def _state(p) -> None:
    p.add_argument(
        "--state",
        metavar="PATH",
        help="state file (default: $SEALER_STATE or $SEALER_HOME/state/<cluster>.json)",
    )
    p.add_argument(
        "--backend",
        metavar="URL",
        help="shared state in PostgreSQL, e.g. postgres://user@db:5432/sealer (default: "
        "$SEALER_BACKEND); the password comes from PGPASSWORD or ~/.pgpass",
    )
    p.add_argument(
        "--lock-timeout",
        default="0s",
        metavar="DURATION",
        help="how long to wait for the state lock (default 0s: fail at once)",
    )


def _refresh_flags(p, ssh: bool = True) -> None:
    p.add_argument(
        "--refresh",
        default="true",
        choices=["true", "false"],
        help="read the live hosts first and show drift (default true)",
    )
    p.add_argument(
        "--refresh-only",
        action="store_true",
        help="only report how the cluster drifted from the state",
    )
    if ssh:
        p.add_argument(
            "--ssh-timeout",
            default="10s",
            metavar="DURATION",
            help="SSH connection timeout (default 10s)",
        )
        p.add_argument(
            "--command-timeout",
            default="60s",
            metavar="DURATION",
            help="timeout of one command on a host",
        )


def _apply_flags(p, approve: bool = True) -> None:
    if approve:
        p.add_argument(
            "--auto-approve",
            action="store_true",
            help="do not ask for approval (needed without a TTY)",
        )
    p.add_argument(
        "--parallelism",
        type=int,
        default=10,
        metavar="N",
        help="at most N actions at once (default 10)",
    )
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    p.add_argument(
        "--ssh-timeout",
        default="10s",
        metavar="DURATION",
        help="SSH connection timeout (default 10s)",
    )
    p.add_argument(
        "--command-timeout",
        default="10m",
        metavar="DURATION",
        help="timeout of one command on a host (default 10m)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="more attempts after a failed SSH connection, with backoff (default 2); "
        "failed commands are not retried",
    )


DEFAULT_SANDBOX_IMAGE = str(
    Path(__file__).resolve().parent.parent / "examples" / "images" / "k3s-v1.25.3"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealer", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(
        subparsers,
        "validate",
        "check a Clusterfile and its ClusterImage",
        "  sealer validate -f Clusterfile",
        "Check a Clusterfile: YAML, schemas, hosts, taints, env, the ClusterImage.\n"
        "Every problem is one line FILE:LINE:COL: PATH: message; exit 1 if any.",
    )
    _clusterfile(p)

    p = _sub(
        subparsers,
        "plan",
        "show what apply would change",
        "  sealer plan -f Clusterfile --detailed-exitcode\n"
        "  sealer plan -f Clusterfile --json --out plan.json\n"
        "  sealer plan -f Clusterfile --destroy",
        "Compare the Clusterfile with the recorded state and print the actions that\n"
        "would bring the cluster to it. Touches no host.",
    )
    _clusterfile(p)
    _state(p)
    p.add_argument("--json", action="store_true", help="print the plan as one JSON document")
    p.add_argument("--out", metavar="FILE", help="save the plan for `sealer apply FILE`")
    p.add_argument("--destroy", action="store_true", help="plan to reset every host")
    _refresh_flags(p)
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 1 on error, 2 when there are changes",
    )
    p.add_argument(
        "--max-unavailable",
        default="10%",
        metavar="N|P%",
        help="workers upgraded at once, a count or a percentage (default 10%%)",
    )

    p = _sub(
        subparsers,
        "apply",
        "change the hosts so the cluster matches the Clusterfile",
        "  sealer apply -f Clusterfile\n  sealer apply -f Clusterfile --auto-approve --json\n"
        "  sealer apply plan.json",
        "Plan, ask for approval, then run the plan's actions on the hosts over SSH, in\n"
        "dependency order and in parallel where allowed. Every finished action is recorded\n"
        "in the state at once; a failed action stops only what depends on it.",
    )
    p.add_argument(
        "target",
        nargs="?",
        metavar="PLANFILE|CLUSTERFILE",
        help="a plan saved with `sealer plan --out`, or a Clusterfile",
    )
    _clusterfile(p)
    _state(p)
    _apply_flags(p)
    _refresh_flags(p, ssh=False)
    p.add_argument(
        "--max-unavailable",
        default="10%",
        metavar="N|P%",
        help="workers upgraded at once, a count or a percentage (default 10%%)",
    )

    p = _sub(
        subparsers,
        "destroy",
        "reset every host and empty the state",
        "  sealer destroy -f Clusterfile --auto-approve",
    )
    _clusterfile(p)
    _state(p)
    _apply_flags(p)

    p = _sub(
        subparsers,
        "run",
        "write a Clusterfile for these hosts and apply it",
        "  sealer run kubernetes:v1.25.3 --masters 10.0.0.1,10.0.0.2,10.0.0.3 \\\n"
        "      --nodes 10.0.0.4 --pk ~/.ssh/id_ed25519",
    )
    p.add_argument("image", metavar="IMAGE", help="NAME:TAG in the store, or a rootfs path")
    p.add_argument("--masters", required=True, metavar="IPS", help="comma-separated")
    p.add_argument("--nodes", default="", metavar="IPS", help="comma-separated")
    p.add_argument("--user", default="root")
    p.add_argument("--passwd", help="SSH password (prefer --pk; never written to disk)")
    p.add_argument("--pk", help="SSH private key file")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--name", default="my-cluster", help="cluster name (default my-cluster)")
    _state(p)
    _apply_flags(p, approve=False)

    p = _sub(
        subparsers,
        "kubeconfig",
        "fetch the admin kubeconfig from the bootstrap master",
        "  sealer kubeconfig -f Clusterfile -o admin.conf",
    )
    _clusterfile(p)
    _state(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write here (mode 0600), not stdout")
    p.add_argument("--ssh-timeout", default="10s", metavar="DURATION")
    p.add_argument("--command-timeout", default="60s", metavar="DURATION")

    p = _sub(
        subparsers,
        "sandbox",
        "local sandbox hosts (127.0.1.N) to try sealer on",
        "  sealer sandbox up 3 > Clusterfile\n  sealer sandbox ls\n  sealer sandbox down",
        "Isolated SSH hosts on this machine: each has its own root filesystem, hostname,\n"
        "process table and host key, and a real OpenSSH server on 127.0.1.N. Needs root.",
    )
    boxes = p.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND")
    q = _sub(
        boxes,
        "up",
        "start N hosts and print a ready Clusterfile for them",
        "  sealer sandbox up 3 --image examples/images/k3s-v1.25.3 > Clusterfile",
    )
    q.add_argument("count", type=int, metavar="N")
    q.add_argument(
        "--image", default=DEFAULT_SANDBOX_IMAGE, help="spec.image of the printed Clusterfile"
    )
    q.add_argument("--masters", type=int, default=1, help="how many of them are masters")
    _sub(boxes, "down", "stop every sandbox host and remove its files", "  sealer sandbox down")
    _sub(boxes, "ls", "list the sandbox hosts", "  sealer sandbox ls")

    p = _sub(
        subparsers,
        "drift",
        "report how the cluster drifted from the state (for cron)",
        "  sealer drift -f Clusterfile --prometheus /var/lib/node_exporter/sealer.prom\n"
        "  # crontab: */15 * * * * sealer drift -f /etc/sealer/Clusterfile --lock-timeout 1m",
        "Read the live hosts and the cluster, read-only, and compare them with the state.\n"
        "Exit 0: no drift; 1: error (including another run holding the state lock);\n"
        "2: drift found.",
    )
    _clusterfile(p)
    _state(p)
    p.add_argument("--json", action="store_true", help="one JSON document with the findings")
    p.add_argument(
        "--prometheus",
        metavar="FILE",
        help="write metrics for node_exporter's textfile collector (atomically)",
    )
    p.add_argument("--ssh-timeout", default="10s", metavar="DURATION")
    p.add_argument("--command-timeout", default="60s", metavar="DURATION")

    p = _sub(
        subparsers,
        "state",
        "inspect or repair the recorded state",
        "  sealer state forget-host-key 10.0.0.5 -f Clusterfile",
    )
    states = p.add_subparsers(dest="state_command", metavar="STATE_COMMAND")
    q = _sub(
        states,
        "forget-host-key",
        "accept a reinstalled host's new SSH host key",
        "  sealer state forget-host-key 10.0.0.5 -f Clusterfile",
        "Forget the host key sealer pinned for IP at first contact; the key seen at the\n"
        "next contact is recorded. Do this only if you know why the key changed.",
    )
    q.add_argument("ip", metavar="IP")
    _clusterfile(q)
    _state(q)
    q = _sub(
        states,
        "pull",
        "print the state as JSON (to move it to another backend)",
        "  sealer state pull -f Clusterfile > cluster.json\n"
        "  sealer state pull --cluster prod --backend postgres://ci@db/sealer --serial 41",
        "Print the current state, with finished actions of an interrupted run folded in.\n"
        "With --serial, print one of the earlier versions a PostgreSQL backend keeps.",
    )
    _cluster_name(q)
    _state(q)
    q.add_argument("--serial", type=int, metavar="N", help="an earlier version (PostgreSQL)")
    q = _sub(
        states,
        "push",
        "replace the state with a state file, with Terraform's safety checks",
        "  sealer state push cluster.json --backend postgres://ci@db:5432/sealer",
        "Refuses a file of another lineage (an unrelated state), or one whose serial is\n"
        "older than the stored state's, unless --force is given.",
    )
    q.add_argument("path", metavar="FILE", help="a state document, e.g. from `state pull`")
    _cluster_name(q)
    _state(q)
    q.add_argument("--force", action="store_true", help="overwrite a newer or unrelated state")
    q = _sub(
        states,
        "versions",
        "list the earlier versions a PostgreSQL backend keeps",
        "  sealer state versions --cluster prod --backend postgres://ci@db/sealer",
    )
    _cluster_name(q)
    _state(q)

    p = _sub(
        subparsers,
        "graph",
        "print the plan's DAG in Graphviz DOT",
        "  sealer graph -f Clusterfile | dot -Tpng > plan.png",
    )
    _clusterfile(p)
    _state(p)
    p.add_argument("--destroy", action="store_true", help="graph the destroy plan")
    p.add_argument("--max-unavailable", default="10%", metavar="N|P%")

    p = _sub(
        subparsers,
        "show",
        "print the state, or a saved plan",
        "  sealer show -f Clusterfile\n  sealer show --json plan.json",
    )
    _clusterfile(p)
    _state(p)
    p.add_argument("planfile", nargs="?", metavar="PLANFILE", help="a plan saved with --out")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _sub(
        subparsers,
        "import",
        "adopt an existing cluster into the state, touching no host",
        "  sealer import -f Clusterfile",
        "Record the hosts of a running cluster (built by sealer, sealos or by hand)\n"
        "as they are in the Clusterfile, without contacting them.",
    )
    _clusterfile(p)
    _state(p)

    p = _sub(
        subparsers,
        "image",
        "manage the local ClusterImage store ($SEALER_HOME/images)",
        "  sealer image load ./rootfs --name kubernetes:v1.25.3\n  sealer image ls",
    )
    images = p.add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
    q = _sub(
        images,
        "load",
        "copy a rootfs folder or .tar/.tar.gz into the store",
        "  sealer image load ./examples/images/k3s-v1.25.3 --name k3s:v1.25.3",
    )
    q.add_argument("path", metavar="PATH")
    q.add_argument(
        "--name",
        metavar="NAME:TAG",
        help="name in the store (default: <runtime>:<version> from Metadata)",
    )
    _sub(images, "ls", "list the images in the store", "  sealer image ls")
    q = _sub(
        images,
        "inspect",
        "show an image's Metadata, labels, launch commands and digest",
        "  sealer image inspect my-app:v1\n  sealer image inspect my-app:v1 --json",
    )
    q.add_argument("name", metavar="NAME:TAG")
    q.add_argument("--json", action="store_true", help="print JSON")
    q = _sub(
        images,
        "save",
        "write an image to a tar archive (sealer image load reads it back)",
        "  sealer image save my-app:v1 -o my-app.tar",
    )
    q.add_argument("name", metavar="NAME:TAG")
    q.add_argument("-o", "--output", required=True, metavar="FILE.tar")
    q = _sub(images, "rm", "remove images from the store", "  sealer image rm my-app:v1")
    q.add_argument("names", nargs="+", metavar="NAME:TAG")

    p = _sub(
        subparsers,
        "build",
        "build a ClusterImage from a Kubefile into the local store",
        "  sealer build -f Kubefile -t my-app:v1 .\n"
        "  sealer build -t my-app:v2 --build-arg REPLICAS=3 --no-cache ./app",
        "Instructions: FROM (NAME:TAG in the store, a path, or scratch), COPY SRC... DEST\n"
        "(from the build context only), RUN CMD (isolated: no network, only the rootfs\n"
        "writable), ENV K=V, ARG K[=V], LABEL K=V, CMD (launch commands run on the bootstrap\n"
        'master after install; the last CMD wins, CMD ["a", "b"] lists several).\n'
        "COPY and RUN steps are cached by content; an unchanged Kubefile rebuilds nothing.",
    )
    p.add_argument("context", nargs="?", default=".", metavar="CONTEXT")
    p.add_argument(
        "-f", "--file", metavar="KUBEFILE", help="the Kubefile (default: CONTEXT/Kubefile)"
    )
    p.add_argument("-t", "--tag", required=True, metavar="NAME:TAG")
    p.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="a value for an ARG"
    )
    p.add_argument("--no-cache", action="store_true", help="redo every COPY and RUN")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    if args.command == "image" and not args.image_command:
        parser.parse_args(["image", "--help"])
    if args.command == "state" and not args.state_command:
        parser.parse_args(["state", "--help"])
    if args.command == "sandbox" and not args.sandbox_command:
        parser.parse_args(["sandbox", "--help"])
    from sealer_cli.commands import run_command

    try:
        return run_command(args)
    except InputError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return 1
    except SealerError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # a bug: still one line, with a way to see more
        if os.environ.get("SEALER_DEBUG"):
            raise
        print(
            f"Error: internal error: {type(e).__name__}: {e} (set SEALER_DEBUG=1 for a "
            f"traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
