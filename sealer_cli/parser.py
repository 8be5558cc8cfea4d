"""The command line's grammar: every command, its flags, its help and examples."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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
(PostgreSQL URL), PGPASSWORD, NO_COLOR, SEALER_LOG (a log level: debug, info, ...) and
SEALER_LOG_PATH (the log's file; default stderr).
"""

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_SANDBOX_IMAGE = str(Path(__file__).resolve().parents[1] / "examples/images/k3s-v1.25.3")

# command -> (summary, examples, longer description or ""): what `--help` shows.
HELP = {
    "validate": (
        "check a Clusterfile and its ClusterImage",
        "sealer validate -f Clusterfile",
        "Check a Clusterfile: YAML, schemas, hosts, taints, env, the ClusterImage.\n"
        "Every problem is one line FILE:LINE:COL: PATH: message; exit 1 if any.",
    ),
    "plan": (
        "show what apply would change",
        "sealer plan -f Clusterfile --detailed-exitcode\n"
        "sealer plan -f Clusterfile --json --out plan.json\nsealer plan -f Clusterfile --destroy\n"
        "sealer plan -f Clusterfile --target 10.0.0.5 --replace 10.0.0.6",
        "Compare the Clusterfile with the recorded state and print the actions that\n"
        "would bring the cluster to it. Reads the hosts (the refresh, the host checks of\n"
        "`sealer check`), changes none.",
    ),
    "check": (
        "check the hosts a plan would join or change, before any is touched",
        "sealer check -f Clusterfile\nsealer check -f Clusterfile --skip-check swap",
        "Read-only. Each host about to join (or change) is asked, in one command, what\n"
        "kubeadm's preflight, k0sctl and KubeKey check: swap, the ports its node needs, a\n"
        "hostname another host has, its clock against this machine's, memory on a master,\n"
        "free space under dataRoot (twice the image), ip_forward and br_netfilter, a container\n"
        "runtime or kubelet sealer did not install. Every plan and apply runs the same checks:\n"
        "errors block them (exit 1) unless --skip-check NAME; warnings are printed.",
    ),
    "apply": (
        "change the hosts so the cluster matches the Clusterfile",
        "sealer apply -f Clusterfile\nsealer apply -f Clusterfile --auto-approve --json\n"
        "sealer apply plan.json\nsealer apply -f Clusterfile --target 10.0.0.5\n"
        "sealer apply -f Clusterfile --replace 10.0.0.6   # reset and re-join a broken node",
        "Plan, ask for approval, then run the plan's actions on the hosts over SSH, in\n"
        "dependency order and in parallel where allowed. Every finished action is recorded\n"
        "in the state at once; a failed action stops only what depends on it.",
    ),
    "destroy": (
        "reset every host and empty the state",
        "sealer destroy -f Clusterfile --auto-approve",
        "",
    ),
    "run": (
        "write a Clusterfile for these hosts and apply it; or run an app image on a cluster",
        "sealer run kubernetes:v1.25.3 --masters 10.0.0.1,10.0.0.2,10.0.0.3 \\\n"
        "    --nodes 10.0.0.4 --pk ~/.ssh/id_ed25519\n"
        "sealer run my-apps:v1 -f Clusterfile --apps nginx,mysql",
        "Without --masters, IMAGE (an application image) installs its apps on the running\n"
        "cluster of -f Clusterfile (or of the Clusterfile an earlier `sealer run --name` wrote).",
    ),
    "scale-up": (
        "add masters or nodes: edits the Clusterfile, then plans and applies it",
        "sealer scale-up --masters 10.0.0.4 --nodes 10.0.1.5,10.0.1.6 -f Clusterfile",
        "Each address joins the first host group of its role in the Clusterfile (a new group\n"
        "if there is none), so that group's ssh, labels and env apply to it. The file keeps\n"
        "its comments and order; the diff is shown before the plan. The edit stays once the\n"
        "plan is approved; a refused or cancelled plan puts the file back.",
    ),
    "delete": (
        "remove masters or nodes (or every host): edits the Clusterfile, then applies it",
        "sealer delete --nodes 10.0.1.5 -f Clusterfile\n"
        "sealer delete --nodes 10.0.1.5 --drain-timeout 2m --disable-eviction\n"
        "sealer delete --all -f Clusterfile --auto-approve",
        "The addresses leave the Clusterfile (a range A-B is split around them); nodes are\n"
        "drained, then reset. --all resets every host, as `sealer destroy`, and keeps the file.",
    ),
    "upgrade": (
        "move the cluster to another ClusterImage: edits spec.image, then applies it",
        "sealer upgrade kubernetes:v1.26.1 -f Clusterfile",
        "Masters upgrade one at a time, then workers in batches (--max-unavailable).",
    ),
    "kubeconfig": (
        "fetch the admin kubeconfig from the bootstrap master",
        "sealer kubeconfig -f Clusterfile -o admin.conf",
        "",
    ),
    "cert": (
        "add names to the API server's certificate on every master, one at a time",
        "sealer cert --alt-names api.example.com,203.0.113.10 -f Clusterfile",
        "kubernetes (kubeadm) clusters. The names stay in the cluster's kubeadm configuration,\n"
        "so masters that join later get them too.",
    ),
    "sandbox": (
        "local sandbox hosts (127.0.1.N, or 198.18.0.0/15 with --net netns) to try sealer on",
        "sealer sandbox up 3 > Clusterfile\nsealer sandbox ls\nsealer sandbox down",
        "Isolated SSH hosts on this machine: each has its own root filesystem, hostname,\n"
        "process table and host key, and a real OpenSSH server on 127.0.1.N. Needs root.",
    ),
    "sandbox up": (
        "start N hosts and print a ready Clusterfile for them",
        "sealer sandbox up 3 --image examples/images/k3s-v1.25.3 > Clusterfile\n"
        "sealer sandbox up 20 --net netns --rate 100mbit --operator-rate 100mbit",
        "",
    ),
    "sandbox down": ("stop every sandbox host and remove its files", "sealer sandbox down", ""),
    "sandbox ls": ("list the sandbox hosts", "sealer sandbox ls", ""),
    "sandbox registry": (
        "start a source registry on 127.0.0.1 with the examples' container images",
        "sealer sandbox registry\nsealer build -t demo-apps:v1 examples/apps",
        "These machines reach no registry of container images: this one serves small images\n"
        "made offline under the names the examples' manifests use (127.0.0.1:5055/sandbox/...),\n"
        "so `sealer build` can collect them. It runs until `sealer sandbox down`.",
    ),
    "sandbox arch": (
        "make a sandbox host report another architecture (uname -m), for multi-arch images",
        "sealer sandbox arch sandbox-2 aarch64\nsealer sandbox arch sandbox-2 --reset",
        "Sandbox only: a /usr/local/bin/uname on the host answers MACHINE to -m (and -p, -i),\n"
        "so sealer installs that architecture's instance of a multi-arch image there. Nothing\n"
        "else changes: the host still runs this machine's programs (the sandbox distributions\n"
        "are Python, and run on any architecture).",
    ),
    "sandbox private": (
        "cut this machine's route to sandbox hosts, so only a bastion reaches them",
        "sealer sandbox up 4 --net netns\nsealer sandbox private sandbox-2 sandbox-3 sandbox-4\n"
        "sealer sandbox private sandbox-2 --reset",
        "netns only: inside each host a blackhole route drops everything for this machine's\n"
        "address (198.18.0.1), so no SSH, ping or relay stream of this machine's reaches it,\n"
        "while the other hosts still do: reach it through a bastion (spec.ssh.bastion).",
    ),
    "sandbox fake": (
        "make a sandbox host report swap, memory or a clock offset, to try the host checks",
        "sealer sandbox fake sandbox-2 --swap 1G --memory 1G --clock 60\n"
        "sealer sandbox fake sandbox-2 --reset",
        "Sandbox only, and said plainly: inside the host, /proc/swaps and /proc/meminfo are\n"
        "replaced by files that say so (a bind mount, as LXCFS does) and `date` runs off by\n"
        "the offset. The host keeps this machine's real memory and clock; only what a program\n"
        "on it reads changes. A taken port, a duplicate hostname or a low disk need no fake.",
    ),
    "connections": (
        "the SSH connections kept open between runs (see --ssh-persist)",
        "sealer connections ls\nsealer connections close\nsealer connections close 10.0.0.2",
        "A refresh (plan, drift, apply) reads its hosts over OpenSSH connections that stay up\n"
        "after the run (default 10 minutes, --ssh-persist / SEALER_SSH_PERSIST), so the next\n"
        "run opens channels, not handshakes. Each is pinned to the host key in the state.",
    ),
    "connections ls": (
        "list the kept connections: host, user, pinned key, state lineage, alive",
        "sealer connections ls",
        "",
    ),
    "connections close": (
        "close the kept connections (all, or those to the given hosts)",
        "sealer connections close\nsealer connections close 10.0.0.2 10.0.0.3",
        "",
    ),
    "drift": (
        "report how the cluster drifted from the state (for cron)",
        "sealer drift -f Clusterfile --prometheus /var/lib/node_exporter/sealer.prom\n"
        "# crontab: */15 * * * * sealer drift -f /etc/sealer/Clusterfile --lock-timeout 1m",
        "Read the live hosts and the cluster, read-only, and compare them with the state.\n"
        "Exit 0: no drift; 1: error (including another run holding the state lock);\n"
        "2: drift found.",
    ),
    "etcd": (
        "back up or restore the cluster's etcd (kubernetes)",
        "sealer etcd backup -o etcd.db -f Clusterfile\nsealer etcd restore etcd.db -f Clusterfile",
        "",
    ),
    "etcd backup": (
        "save an etcd snapshot from a healthy member to a local file (mode 0600)",
        "sealer etcd backup -o etcd-$(date +%F).db -f Clusterfile",
        "Refused when etcd has no quorum. The snapshot holds every secret of the cluster.",
    ),
    "etcd restore": (
        "rebuild every master's etcd member from a snapshot",
        "sealer etcd restore etcd.db -f Clusterfile",
        "Stops etcd and kube-apiserver on every master (their static pods), restores each\n"
        "member's data from FILE, and starts them again. Every master must answer over SSH.",
    ),
    "registry": (
        "the cluster's image registry",
        "sealer registry prune -f Clusterfile",
        "",
    ),
    "registry prune": (
        "drop the container images the cluster's image no longer carries from its registry",
        "sealer registry prune -f Clusterfile",
        "A rebuilt image adds its new blobs to the running registry and removes nothing:\n"
        "pods may still run the old images. Prune removes the tags the applied image does not\n"
        "name, then the blobs nothing references (the registry's garbage-collect, with the\n"
        "registry stopped for it), on every serving master.",
    ),
    "state": (
        "inspect or repair the recorded state",
        "sealer state forget-host-key 10.0.0.5 -f Clusterfile",
        "",
    ),
    "state list": (
        "list the hosts the state records",
        "sealer state list -f Clusterfile\nsealer state list --state prod.json",
        "",
    ),
    "state rm": (
        "forget hosts without touching them (e.g. a machine that burned)",
        "sealer state rm 10.0.0.7 -f Clusterfile",
        "Remove the hosts from the state only: nothing is run on them or on the cluster.\n"
        "Take them out of the Clusterfile too, or the next plan joins them again. The state's\n"
        "serial goes up and the previous version is kept as the backup.",
    ),
    "state mv": (
        "record a re-addressed host under its new address",
        "sealer state mv 10.0.0.7 10.0.1.7 -f Clusterfile",
        "The host keeps its record (roles, version, pinned host key) under NEW_IP. Change the\n"
        "Clusterfile to the new address too. Nothing is run on any host.",
    ),
    "output": (
        "print the cluster's endpoint, hosts, version and kubeconfig location (for scripts)",
        "sealer output -f Clusterfile\nsealer output --json --state prod.json | jq -r .api_endpoint",
        "Read from the state only: no host is contacted. The JSON keys are stable.",
    ),
    "version": ("print sealer's version", "sealer version\nsealer --version", ""),
    "state forget-host-key": (
        "accept a reinstalled host's new SSH host key",
        "sealer state forget-host-key 10.0.0.5 -f Clusterfile",
        "Forget the host key sealer pinned for IP at first contact; the key seen at the\n"
        "next contact is recorded. Do this only if you know why the key changed.",
    ),
    "state pull": (
        "print the state as JSON (to move it to another backend)",
        "sealer state pull -f Clusterfile > cluster.json\n"
        "sealer state pull --cluster prod --backend postgres://ci@db/sealer --serial 41",
        "Print the current state, with finished actions of an interrupted run folded in.\n"
        "With --serial, print an earlier version: the local file keeps one (its backup),\n"
        "a PostgreSQL backend the last 10.",
    ),
    "state push": (
        "replace the state with a state file, with Terraform's safety checks",
        "sealer state push cluster.json --backend postgres://ci@db:5432/sealer",
        "Refuses a file of another lineage (an unrelated state), or one whose serial is\n"
        "older than the stored state's, unless --force is given.",
    ),
    "state versions": (
        "list the earlier versions the backend keeps",
        "sealer state versions --cluster prod --backend postgres://ci@db/sealer",
        "",
    ),
    "graph": (
        "print the plan's DAG in Graphviz DOT",
        "sealer graph -f Clusterfile | dot -Tpng > plan.png",
        "",
    ),
    "show": (
        "print the state, or a saved plan",
        "sealer show -f Clusterfile\nsealer show --json plan.json\nsealer show --state prod.json\n"
        "sealer show --backend postgres://ci@db/sealer --cluster prod",
        "Without a Clusterfile, --cluster NAME (or the cluster a --state file names) says\n"
        "which state.",
    ),
    "import": (
        "adopt an existing cluster into the state, changing no host",
        "sealer import -f Clusterfile\n"
        "sealer import --discover --master 10.0.0.1 --image kubernetes:v1.25.3 \\\n"
        "    --pk ~/.ssh/id_ed25519 --name prod -f Clusterfile",
        "Record the hosts of a running cluster (built by sealer, sealos or by hand)\n"
        "as they are in the Clusterfile, without contacting them. With --discover, read the\n"
        "cluster from one master instead (nodes, roles, versions, labels, taints; k0s\n"
        "controllers from etcd), write a Clusterfile that matches it to -f (a new file), and\n"
        "record it: its launch commands and apps are taken as already run.",
    ),
    "image": (
        "the local ClusterImage store ($SEALER_HOME/oci), by its older spellings",
        "sealer image load ./rootfs --name kubernetes:v1.25.3\nsealer image ls",
        "Aliases of sealer load, images, inspect, save and rmi.",
    ),
    "image load": (
        "load a rootfs folder or tar, or an image archive, into the store",
        "sealer image load ./examples/images/k3s-v1.25.3 --name k3s:v1.25.3",
        "",
    ),
    "image ls": ("list the images in the store (sealer images)", "sealer image ls", ""),
    "image inspect": (
        "show an image's manifest, config, sealer extension and what it launches",
        "sealer image inspect my-app:v1\nsealer image inspect my-app:v1 --json",
        "",
    ),
    "image save": (
        "write an image to an archive (sealer save)",
        "sealer image save my-app:v1 -o my-app.tar",
        "",
    ),
    "image rm": ("remove images from the store (sealer rmi)", "sealer image rm my-app:v1", ""),
    "login": (
        "log in to a registry: credentials kept in the auth file (mode 0600)",
        "sealer login registry.example.com -u alice --password-stdin < password.txt\n"
        'sealer login 127.0.0.1:5000 -u ci -p "$PASS" --tls-verify=false',
        "The credentials go to $REGISTRY_AUTH_FILE, else $SEALER_HOME/auth.json (containers'\n"
        "auth.json format, mode 0600); pull, push and apply read them. The password goes to\n"
        "skopeo on a pipe, never on a command line; prefer --password-stdin to -p.\n"
        "TLS is verified against the system's CAs and /etc/containers/certs.d/HOST:PORT/ca.crt\n"
        "($SEALER_HOME/certs.d/HOST:PORT/ instead, when it exists).",
    ),
    "logout": ("forget a registry's credentials", "sealer logout registry.example.com", ""),
    "pull": (
        "bring a ClusterImage from its registry into the local store",
        "sealer pull docker.io/sealerio/kubernetes:v1.22.15\n"
        "sealer pull registry.example.com/team/app:v2 --platform linux/arm64 --policy missing",
        "Every platform of a multi-arch image is pulled unless --platform picks one.\n"
        "spec.image, sealer run, FROM and sealer upgrade pull a reference that is not in the\n"
        "store (policy missing); `sealer pull --policy always` moves a tag to what the\n"
        "registry has now, and the next plan shows the digest change.",
    ),
    "push": (
        "send a stored image (every platform) to its registry, or to DEST",
        "sealer push registry.example.com/team/app:v2\nsealer push app:v2 127.0.0.1:5000/app:v2",
        "",
    ),
    "tag": (
        "give a stored image more names",
        "sealer tag app:v2 registry.example.com/team/app:v2",
        "",
    ),
    "images": ("list the images in the local store", "sealer images", ""),
    "rmi": ("remove images from the local store", "sealer rmi app:v1", ""),
    "inspect": (
        "print an image in sealer's ImageSpec shape (JSON)",
        "sealer inspect docker.io/sealerio/kubernetes:v1.22.15\n"
        "sealer inspect app:v2 --platform linux/arm64",
        "",
    ),
    "save": (
        "write images to an archive (oci-archive by default)",
        "sealer save -o app.tar app:v2\nsealer save --format oci-dir -o ./app-layout app:v2",
        "",
    ),
    "load": (
        "load an archive of `sealer save` (oci-archive, oci-dir, docker-archive) into the store",
        "sealer load -i app.tar",
        "",
    ),
    "build": (
        "build a ClusterImage from a Kubefile into the local store",
        "sealer build -f Kubefile -t my-app:v1 .\n"
        "sealer build -t my-app:v2 --build-arg REPLICAS=3 --no-cache ./app",
        "The image is stored in sealer's OCI format (sealer push sends it to a registry).\n"
        "Instructions: FROM (a reference: in the store, else pulled; a path; or scratch),\n"
        "COPY SRC... DEST\n"
        "(from the build context only), RUN CMD (isolated: no network, only the rootfs\n"
        "writable), ENV K=V, ARG K[=V], LABEL K=V, CMD (launch commands run on the bootstrap\n"
        'master after install; the last CMD wins, CMD ["a", "b"] lists several).\n'
        "COPY and RUN steps are cached by content; an unchanged Kubefile rebuilds nothing.",
    ),
}


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class VersionAction(argparse.Action):
    """--version: the installed version, looked up only when asked (importlib.metadata is a
    tenth of a fast command's time)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"sealer {version()}")
        parser.exit()


def version() -> str:
    """The installed package's version (pyproject.toml's)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sealer")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _tls(p) -> None:
    p.add_argument(
        "--tls-verify",
        default="true",
        choices=("true", "false"),
        metavar="BOOL",
        help="check the registry's TLS certificate (default true; false also allows plain HTTP)",
    )
    p.add_argument(
        "--skip-tls-verify",
        dest="tls_verify",
        action="store_const",
        const="false",
        help="sealer's spelling of --tls-verify=false",
    )


def _image_commands(commands) -> None:
    """login, logout, pull, push, tag, images, rmi, inspect, save, load: sealer's spellings."""
    p = _sub(commands, "login")
    p.add_argument("registry", metavar="REGISTRY")
    p.add_argument("-u", "--username", default="", metavar="USER")
    p.add_argument("-p", "--password", "--passwd", default="", metavar="PASS",
                   help="the password (seen by other users in ps: prefer --password-stdin)")  # fmt: skip
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _tls(p)
    _sub(commands, "logout").add_argument("registry", metavar="REGISTRY")
    p = _sub(commands, "pull")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", default="", metavar="OS/ARCH[/VARIANT]",
                   help="pull only this platform of a multi-arch image (default: every one)")  # fmt: skip
    p.add_argument("--policy", default="always", choices=("always", "missing", "ifnewer", "never"),
                   help="always (default, as sealer), missing, ifnewer or never")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    _tls(p)
    p = _sub(commands, "push")
    p.add_argument("ref", metavar="REF")
    p.add_argument("destination", nargs="?", default="", metavar="DEST")
    _tls(p)
    p = _sub(commands, "tag")
    p.add_argument("source", metavar="SRC")
    p.add_argument("targets", nargs="+", metavar="DST")
    _sub(commands, "images")
    _sub(commands, "rmi").add_argument("names", nargs="+", metavar="REF")
    p = _sub(commands, "inspect")
    p.add_argument("name", metavar="REF")
    p.add_argument("--platform", default="", metavar="OS/ARCH[/VARIANT]",
                   help="the instance of a multi-arch image to show")  # fmt: skip
    p = _sub(commands, "save")
    p.add_argument("names", nargs="+", metavar="REF")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument(
        "--format", default="oci-archive", choices=("oci-archive", "oci-dir", "docker-archive")
    )
    p = _sub(commands, "load")
    p.add_argument("-i", "--input", required=True, metavar="FILE")
    p.add_argument("--name", metavar="NAME:TAG", help="for an archive of one image: its name")


def _sub(subparsers, path: str, *groups):
    """The parser of one command (path: "plan", "state pull"), with these flag groups."""
    summary, examples, description = HELP[path]
    p = subparsers.add_parser(
        path.split()[-1],
        help=summary,
        description=(description or summary) + "\n",
        epilog="example:\n" + "\n".join(f"  {line}" for line in examples.splitlines()),
        formatter_class=Formatter,
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,  # a group's command does not reset its parent's
        help="write a log: each remote command (secrets masked), its exit code and duration, "
        "internal errors' tracebacks (default $SEALER_LOG; to stderr, or $SEALER_LOG_PATH)",
    )
    for group in groups:
        group(p)
    return p


# ---- flag groups ----


def clusterfile(p) -> None:
    p.add_argument(
        "-f",
        "--file",
        default="Clusterfile",
        metavar="CLUSTERFILE",
        help="the Clusterfile (default: ./Clusterfile)",
    )


def cluster_name(p) -> None:
    clusterfile(p)
    p.add_argument(
        "--cluster", metavar="NAME", help="the cluster's name, instead of the Clusterfile's"
    )


def state(p) -> None:
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


def refresh(p) -> None:
    p.add_argument(
        "--refresh",
        default="true",
        choices=["true", "false"],
        help="read the live hosts first and show drift (default true)",
    )
    p.add_argument(
        "--refresh-only", action="store_true", help="only report how the cluster drifted"
    )


def timeouts(p, command: str = "60s") -> None:
    p.add_argument(
        "--ssh-timeout",
        default="10s",
        metavar="DURATION",
        help="SSH connection timeout (default 10s)",
    )
    p.add_argument(
        "--command-timeout",
        default=command,
        metavar="DURATION",
        help=f"timeout of one command on a host (default {command})",
    )
    p.add_argument(
        "--ssh-persist",
        default=os.environ.get("SEALER_SSH_PERSIST") or "10m",
        metavar="DURATION",
        help="keep the connections a refresh reads over open this long after the run, for the "
        "next one (default 10m, env SEALER_SSH_PERSIST; 0 closes them with the run)",
    )


def max_unavailable(p) -> None:
    p.add_argument(
        "--max-unavailable",
        default="10%",
        metavar="N|P%",
        help="workers upgraded at once, a count or a percentage (default 10%%)",
    )


def targeting(p) -> None:
    p.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="HOST",
        help="only the actions on this host and what they need (repeatable)",
    )
    p.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="HOST",
        help="reset this host and join it again, e.g. a broken node (repeatable)",
    )


def checking(p) -> None:
    p.add_argument(
        "--skip-check",
        dest="skip_checks",
        action="append",
        default=[],
        metavar="NAME",
        help="let this host check's errors through (repeatable): swap, ports, hostname, clock, "
        "memory, disk, ip_forward, br_netfilter, runtime",
    )


def draining(p) -> None:
    p.add_argument(
        "--drain-timeout",
        default="5m",
        metavar="DURATION",
        help="give up draining a node after this; the action fails naming the pods that "
        "blocked it, and what depends on it is skipped (default 5m)",
    )
    p.add_argument(
        "--force", action="store_true", help="drain also deletes bare pods (no controller)"
    )
    p.add_argument(
        "--disable-eviction",
        action="store_true",
        help="delete pods instead of evicting them: ignores PodDisruptionBudgets (warned)",
    )
    p.add_argument(
        "--no-drain", action="store_true", help="remove or upgrade nodes without draining them"
    )


def approval(p) -> None:
    p.add_argument("--auto-approve", action="store_true", help="do not ask (needed without a TTY)")


def execution(p) -> None:
    """How an apply runs: parallelism, output, timeouts, retries."""
    p.add_argument(
        "--parallelism", type=int, default=10, metavar="N", help="at most N actions at once"
    )
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    timeouts(p, command="10m")
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="more attempts after a failed SSH connection, with backoff (default 2); "
        "failed commands are not retried",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealer", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _sub(commands, "validate", clusterfile)

    p = _sub(
        commands, "plan", clusterfile, state, refresh, timeouts, max_unavailable, targeting,
        checking,
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the plan as one JSON document")
    p.add_argument("--out", metavar="FILE", help="save the plan for `sealer apply FILE`")
    p.add_argument("--destroy", action="store_true", help="plan to reset every host")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 1 on error, 2 when there are changes",
    )

    p = _sub(commands, "apply")
    p.add_argument(
        "source",
        nargs="?",
        metavar="PLANFILE|CLUSTERFILE",
        help="a plan saved with `sealer plan --out`, or a Clusterfile",
    )
    for group in (
        clusterfile,
        state,
        approval,
        execution,
        refresh,
        max_unavailable,
        targeting,
        checking,
        draining,
    ):
        group(p)

    _sub(commands, "check", clusterfile, state, timeouts, checking)

    _sub(commands, "destroy", clusterfile, state, approval, execution)

    p = _sub(commands, "run")
    p.add_argument("image", metavar="IMAGE", help="NAME:TAG in the store, or a rootfs path")
    p.add_argument(
        "-m", "--masters", default="", metavar="IPS", help="comma-separated (a new cluster)"
    )
    p.add_argument(
        "-f",
        "--Clusterfile",
        dest="run_clusterfile",
        default="",
        metavar="FILE",
        help="without --masters: the running cluster's Clusterfile (IMAGE runs on it)",
    )
    p.add_argument("--apps", default="", metavar="NAMES", help="apps to launch (comma-separated)")
    p.add_argument(
        "--cmds", action="append", default=[], metavar="CMD", help="a launch command (repeatable)"
    )
    p.add_argument("-n", "--nodes", default="", metavar="IPS", help="comma-separated")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="an env entry of the cluster (spec.env; repeatable)",
    )
    p.add_argument("-u", "--user", default="root")
    p.add_argument(
        "--passwd",
        help="SSH password (shows in `ps`: prefer --passwd-file or $SEALER_SSH_PASSWORD)",
    )
    p.add_argument("--passwd-file", metavar="FILE", help="a file whose first line is the password")
    p.add_argument("--pk", help="SSH private key file")
    p.add_argument(
        "--pk-passwd",
        metavar="PASSPHRASE",
        help="the key's passphrase (shows in `ps`: prefer $SEALER_SSH_KEY_PASSPHRASE)",
    )
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--name", default="my-cluster", help="cluster name (default my-cluster)")
    state(p)
    execution(p)

    p = _sub(commands, "scale-up")
    p.add_argument("-m", "--masters", default="", metavar="IPS", help="comma-separated")
    p.add_argument("-n", "--nodes", default="", metavar="IPS", help="comma-separated")
    for group in (clusterfile, state, approval, execution, max_unavailable):
        group(p)
    p = _sub(commands, "delete")
    p.add_argument("-m", "--masters", default="", metavar="IPS", help="comma-separated")
    p.add_argument("-n", "--nodes", default="", metavar="IPS", help="comma-separated")
    p.add_argument("-a", "--all", action="store_true", help="every host (the whole cluster)")
    for group in (clusterfile, state, approval, execution, draining):
        group(p)
    p = _sub(commands, "upgrade")
    p.add_argument("image", metavar="IMAGE", help="NAME:TAG in the store, or a rootfs path")
    for group in (clusterfile, state, approval, execution, max_unavailable, draining):
        group(p)

    p = _sub(commands, "kubeconfig", clusterfile, state, timeouts)
    p.add_argument("-o", "--output", metavar="FILE", help="write here (mode 0600), not stdout")

    p = _sub(commands, "cert", clusterfile, state, timeouts)
    p.add_argument(
        "--alt-names", required=True, metavar="NAMES", help="comma-separated DNS names and IPs"
    )

    boxes = _sub(commands, "sandbox").add_subparsers(
        dest="sandbox_command", metavar="SANDBOX_COMMAND"
    )
    q = _sub(boxes, "sandbox up")
    q.add_argument("count", type=int, metavar="N")
    q.add_argument(
        "--image", default=DEFAULT_SANDBOX_IMAGE, help="spec.image of the printed Clusterfile"
    )
    q.add_argument("--masters", type=int, default=1, help="how many of them are masters")
    q.add_argument(
        "--net",
        choices=("loopback", "netns"),
        help="loopback: 127.0.1.N on this machine's network; netns: each host in a network "
        "namespace of its own on a bridge, 198.18.0.0/15 (default $SEALER_SANDBOX_NET or "
        "loopback)",
    )
    q.add_argument("--rate", metavar="RATE", help="netns: each host's link bandwidth (100mbit)")
    q.add_argument(
        "--delay", metavar="DELAY", help="netns: each link's one-way delay (1ms; needs netem)"
    )
    q.add_argument(
        "--operator-rate", metavar="RATE", help="netns: this machine's side of the bridge"
    )
    _sub(boxes, "sandbox down")
    q = _sub(boxes, "sandbox registry")
    q.add_argument("--port", type=int, default=5055, help="serve on 127.0.0.1:PORT (default 5055)")
    _sub(boxes, "sandbox ls")
    q = _sub(boxes, "sandbox arch")
    q.add_argument("host", metavar="HOST", help="sandbox-N, or its address")
    q.add_argument("machine", nargs="?", default="", metavar="MACHINE", help="e.g. aarch64")
    q.add_argument("--reset", action="store_true", help="report the real architecture again")
    q = _sub(boxes, "sandbox fake")
    q.add_argument("host", metavar="HOST", help="sandbox-N, or its address")
    q.add_argument("--swap", metavar="SIZE", help="report this much swap on (e.g. 1G)")
    q.add_argument("--memory", metavar="SIZE", help="report this much memory (e.g. 1G)")
    q.add_argument("--clock", type=int, metavar="SECONDS", help="run `date` this far off")
    q.add_argument("--reset", action="store_true", help="report the real swap, memory, clock")
    q = _sub(boxes, "sandbox private")
    q.add_argument("hosts", nargs="+", metavar="HOST", help="sandbox-N, or its address")
    q.add_argument("--reset", action="store_true", help="give this machine its route back")

    kept = _sub(commands, "connections").add_subparsers(
        dest="connections_command", metavar="CONNECTIONS_COMMAND"
    )
    _sub(kept, "connections ls")
    q = _sub(kept, "connections close")
    q.add_argument("hosts", nargs="*", metavar="HOST", help="only the connections to these hosts")

    p = _sub(commands, "drift", clusterfile, state, timeouts)
    p.add_argument("--json", action="store_true", help="one JSON document with the findings")
    p.add_argument(
        "--prometheus",
        metavar="FILE",
        help="write metrics for node_exporter's textfile collector (atomically)",
    )

    states = _sub(commands, "state").add_subparsers(dest="state_command", metavar="STATE_COMMAND")
    _sub(states, "state list", cluster_name, state)
    q = _sub(states, "state rm", cluster_name, state)
    q.add_argument("ips", nargs="+", metavar="IP")
    q = _sub(states, "state mv", cluster_name, state)
    q.add_argument("old_ip", metavar="OLD_IP")
    q.add_argument("new_ip", metavar="NEW_IP")
    _sub(states, "state forget-host-key", clusterfile, state).add_argument("ip", metavar="IP")
    q = _sub(states, "state pull", cluster_name, state)
    q.add_argument("--serial", type=int, metavar="N", help="an earlier version")
    q = _sub(states, "state push", cluster_name, state)
    q.add_argument("path", metavar="FILE", help="a state document, e.g. from `state pull`")
    q.add_argument("--force", action="store_true", help="overwrite a newer or unrelated state")
    _sub(states, "state versions", cluster_name, state)

    etcd = _sub(commands, "etcd").add_subparsers(dest="etcd_command", metavar="ETCD_COMMAND")
    etcd.required = True
    q = _sub(etcd, "etcd backup", clusterfile, state, timeouts)
    q.add_argument("-o", "--output", required=True, metavar="FILE", help="the snapshot file")
    q = _sub(etcd, "etcd restore", clusterfile, state, timeouts)
    q.add_argument("snapshot", metavar="FILE", help="a snapshot from `sealer etcd backup`")

    registry = _sub(commands, "registry").add_subparsers(
        dest="registry_command", metavar="REGISTRY_COMMAND"
    )
    registry.required = True
    _sub(registry, "registry prune", clusterfile, state, timeouts)

    p = _sub(commands, "graph", clusterfile, state, max_unavailable)
    p.add_argument("--destroy", action="store_true", help="graph the destroy plan")

    p = _sub(commands, "show", cluster_name, state)
    p.add_argument("planfile", nargs="?", metavar="PLANFILE", help="a plan saved with --out")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _sub(commands, "import", clusterfile, state, timeouts)
    p.add_argument("--discover", action="store_true", help="read the cluster from --master")
    p.add_argument("--master", metavar="IP", help="with --discover: a master to read from")
    p.add_argument("--image", metavar="IMAGE", help="with --discover: the ClusterImage it runs")
    p.add_argument("--name", default="my-cluster", help="with --discover: the cluster's name")
    p.add_argument("-u", "--user", default="root", help="with --discover: the SSH user")
    p.add_argument("--pk", help="with --discover: SSH private key file")
    p.add_argument(
        "--passwd-file",
        metavar="FILE",
        help="with --discover: a file whose first line is the SSH password (or "
        "$SEALER_SSH_PASSWORD)",
    )
    p.add_argument("--port", type=int, default=22, help="with --discover: the SSH port")

    p = _sub(commands, "output", cluster_name, state)
    p.add_argument("--json", action="store_true", help="one JSON document")
    _sub(commands, "version")

    images = _sub(commands, "image").add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
    q = _sub(images, "image load")
    q.add_argument("path", metavar="PATH")
    q.add_argument(
        "--name", metavar="NAME:TAG", help="name in the store (default: <runtime>:<version>)"
    )
    q.add_argument("--force", action="store_true", help="replace another image of that name")
    _sub(images, "image ls")
    q = _sub(images, "image inspect")
    q.add_argument("name", metavar="NAME:TAG")
    q.add_argument("--json", action="store_true", help="print JSON")
    q = _sub(images, "image save")
    q.add_argument("name", metavar="NAME:TAG")
    q.add_argument("-o", "--output", required=True, metavar="FILE.tar")
    _sub(images, "image rm").add_argument("names", nargs="+", metavar="NAME:TAG")
    _image_commands(commands)

    p = _sub(commands, "build")
    p.add_argument("context", nargs="?", default=".", metavar="CONTEXT")
    p.add_argument("-f", "--file", metavar="KUBEFILE", help="default: CONTEXT/Kubefile")
    p.add_argument("-t", "--tag", required=True, metavar="NAME:TAG")
    p.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="a value for an ARG"
    )
    p.add_argument("--no-cache", action="store_true", help="redo every COPY and RUN")
    p.add_argument(
        "--type",
        dest="image_type",
        choices=("kube-installer", "app-installer"),
        help="what the image must be: a cluster image, or apps only (default: as built)",
    )
    p.add_argument(
        "--build-mode",
        choices=("all", "lite"),
        default="all",
        help="all: copy the container images the image needs into its registry/; lite: do not",
    )
    p.add_argument(
        "--platform",
        metavar="linux/ARCH[/VARIANT]",
        help="linux/ARCH[/VARIANT][,...]: build for these platforms (several: an image index "
        "with one manifest each); also the variant of each container image to copy "
        "(default: the base image's arch)",
    )
    p.add_argument(
        "--ignored-image-list",
        metavar="FILE",
        help="container images (one per line) not to copy, as named in the manifests",
    )
    p.add_argument(
        "--run-timeout", default="1h", metavar="DURATION", help="stop a RUN after (default 1h)"
    )
    p.add_argument(
        "--memory", default="8g", metavar="SIZE", help="address space of a RUN process (8g)"
    )
    return parser
