"""What every runtime shares: the node operations it is given and the kubectl steps."""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from cluster.errors import SealerError
from cluster.kubeadm import API_PORT, DEFAULT_ENDPOINT
from cluster.model import DrainPolicy
from executors.driver import Followed, HostError, Result
from executors.facts import RuntimeProbe
from executors.runtimes.watch import WATCH_ARGS, NodeWatch


class NodeOps(Protocol):
    """What a runtime may do; given by the applier. A runtime never opens a connection itself."""

    bootstrap: str  # IP of the master that runs cluster-wide commands

    def run(
        self,
        ip: str,
        command: str,
        *,
        stdin: bytes = b"",
        check: bool = True,
        secrets: tuple[str, ...] = (),
        timeout: float | None = None,
    ) -> Result: ...

    def follow(self, ip: str, command: str) -> Followed: ...  # a long-running command

    def name(self, ip: str) -> str: ...  # the node name (the host's hostname)

    def address(self, ip: str) -> str: ...

    def labels(self, ip: str) -> dict[str, str]: ...

    def taints(self, ip: str) -> list[str]: ...

    @property
    def version(self) -> str: ...  # the image version being installed

    @property
    def masters(self) -> list[str]: ...  # the masters' addresses, as the Clusterfile has them

    @property
    def endpoint(self) -> tuple[str, int]: ...  # the control-plane endpoint name and port


POLL_SECONDS = 0.25  # between two looks at the node list while nodes come up
DEFAULT_DRAIN = DrainPolicy()  # frozen: one shared default


@dataclass(frozen=True)
class ImageInputs:
    """What a runtime reads once, when it is made: the image's rootfs (on this machine), the
    Clusterfile's documents for it, the version it installs, and the names `sealer cert`
    added to the API server's certificate, and the cluster registry's endpoint (DOMAIN:PORT,
    "" without one), where kubeadm pulls the control plane's images from."""

    rootfs: str
    documents: tuple = ()
    version: str = ""
    sans: tuple[str, ...] = ()
    image_repository: str = ""


class Runtime:
    """A distribution's commands for each step of a node's life. Everything one run gives it
    comes at construction (the drain policy, the image); the caches it keeps (join secrets,
    the node listing, the node watch) live as long as it, one run."""

    name = ""
    kubectl_command = "kubectl"
    ready_timeout = 60.0

    def __init__(self, drain: DrainPolicy = DEFAULT_DRAIN, image: ImageInputs | None = None):
        self._secrets_lock = threading.Lock()
        self._secrets: dict[str, str] = {}  # join tokens etc., for this apply only, in memory
        self._listing_lock = threading.Lock()
        self._listing: dict[str, tuple[float, dict]] = {}  # bootstrap -> (fetched at, nodes)
        self._watch_lock = threading.Lock()
        self._watches: dict[str, NodeWatch] = {}  # bootstrap -> the watch waiters share
        self.drain_policy = drain  # kubectl drain's flags (--drain-timeout, --force, ...)
        if image is not None:
            self.configure(image)

    def configure(self, image: ImageInputs) -> None:
        """Read what the runtime needs from the image and the Clusterfile (at construction)."""

    def reconfigure_master(self, ops: NodeOps, ip: str) -> None:
        raise SealerError(f"{self.name}: a master cannot be reconfigured in place")

    @property
    def endpoint(self) -> tuple[str, int]:
        return DEFAULT_ENDPOINT, API_PORT

    def secret(self, key: str, fetch) -> str:
        """A join secret fetched once per apply (one round trip instead of one per join)."""
        with self._secrets_lock:
            if key not in self._secrets:
                self._secrets[key] = fetch()
            return self._secrets[key]

    # ---- cluster-wide helpers, run on the bootstrap master ----

    def kubectl(
        self, ops: NodeOps, *args: str, check: bool = True, timeout: float | None = None
    ) -> Result:
        """kubectl on the bootstrap master; every argument quoted (node names come from hosts)."""
        command = f"{self.kubectl_command} {shlex.join(args)}"
        return ops.run(ops.bootstrap, command, check=check, timeout=timeout)

    def image_pull_failures(self, ops: NodeOps) -> list[dict]:
        """The pods' containers that cannot get their image (image_pull_failures)."""
        out = self.kubectl(ops, "get", "pods", "-A", "-o", "json").stdout
        try:
            return image_pull_failures(out)
        except (ValueError, AttributeError, TypeError) as e:
            raise SealerError(
                f"{ops.bootstrap}: unreadable `kubectl get pods -A -o json`: {e}"
            ) from None

    def nodes(self, ops: NodeOps, newer_than: float | None = None) -> dict[str, dict]:
        """The cluster's nodes by name, from `kubectl get nodes -o json`.

        Many joins wait for their node at once; they share one listing fetched after
        `newer_than` (default: now) instead of each polling the bootstrap master.
        """
        newer_than = time.monotonic() if newer_than is None else newer_than
        with self._listing_lock:
            cached = self._listing.get(ops.bootstrap)
            if cached and cached[0] >= newer_than:
                return cached[1]
            started = time.monotonic()
            out = self.kubectl(ops, "get", "nodes", "-o", "json").stdout
            try:
                items = json.loads(out)["items"]
            except (ValueError, KeyError) as e:
                raise SealerError(
                    f"{ops.bootstrap}: unreadable `kubectl get nodes -o json`: {e}"
                ) from None
            listing = {item["metadata"]["name"]: item for item in items}
            self._listing[ops.bootstrap] = (started, listing)
            return listing

    def wait_ready(self, ops: NodeOps, ip: str, version: str | None = None) -> None:
        name = ops.name(ip)
        deadline = time.monotonic() + self.ready_timeout

        def qualifies(node: dict | None) -> bool:
            return (
                node is not None
                and is_ready(node)
                and (version is None or node["status"]["nodeInfo"]["kubeletVersion"] == version)
            )

        if self._watch_for(ops, name, qualifies, self.ready_timeout):
            return
        problem = ""
        while True:  # no watch (or it ended): look at the node list until the time is up
            asked = time.monotonic()
            try:
                node = self.nodes(ops, newer_than=asked - 0.05).get(name)
            except HostError as e:  # the API server may still be starting
                if e.unreachable:
                    raise
                node, problem = None, f": {e}"
            if qualifies(node):
                return
            if time.monotonic() > deadline:
                raise SealerError(
                    f"{ip}: node {name} not Ready at {version or 'any version'} "
                    f"after {self.ready_timeout:g}s{problem}"
                )
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - asked)))

    def _watch_for(self, ops: NodeOps, name: str, qualifies, timeout: float) -> bool:
        """Wait on the bootstrap master's shared node watch. False if it timed out or could
        not watch (the caller then polls for the rest of the time)."""
        with self._watch_lock:
            watch = self._watches.get(ops.bootstrap)
            if watch is None or not watch.join():
                bootstrap = ops.bootstrap
                watch = self._watches[bootstrap] = NodeWatch(
                    lambda: ops.follow(bootstrap, f"{self.kubectl_command} {WATCH_ARGS}")
                )
                watch.join()
        try:
            return bool(watch.wait(name, qualifies, timeout))
        finally:
            watch.leave()

    def is_node(self, ops: NodeOps, ip: str) -> bool:
        return ops.name(ip) in self.nodes(ops)

    def drain(self, ops: NodeOps, ip: str) -> None:
        """kubectl drain with the apply's policy; a drain that fails or times out fails the
        action, with kubectl's words (they name the pods that blocked it)."""
        policy = self.drain_policy
        if policy.skip or not self.is_node(ops, ip):
            return
        name = ops.name(ip)
        # kubectl gives up at the drain timeout; the SSH command waits a little longer
        args = policy.kubectl_args()
        result = self.kubectl(ops, "drain", name, *args, check=False, timeout=policy.timeout + 60)
        if result.exit_code != 0:
            said = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            raise SealerError(
                f"{ip}: draining node {name} failed (--drain-timeout {policy.timeout:g}s): "
                f"{(said or result.stderr.strip().splitlines() or ['no output'])[-1]}"
            )

    def cordon(self, ops: NodeOps, ip: str) -> None:
        self.kubectl(ops, "cordon", ops.name(ip))

    def uncordon(self, ops: NodeOps, ip: str) -> None:
        self.kubectl(ops, "uncordon", ops.name(ip))

    def delete_node(self, ops: NodeOps, ip: str) -> None:
        if self.is_node(ops, ip):
            self.kubectl(ops, "delete", "node", ops.name(ip))

    def set_labels_and_taints(
        self, ops: NodeOps, ip: str, old_labels: dict | None = None, old_taints: list | None = None
    ) -> None:
        """Make the node's labels and taints those of the Clusterfile."""
        name = ops.name(ip)
        labels, taints = ops.labels(ip), ops.taints(ip)
        label_args = [f"{k}={v}" for k, v in labels.items()]
        label_args += [f"{k}-" for k in (old_labels or {}) if k not in labels]
        if label_args:
            self.kubectl(ops, "label", "node", name, *label_args, "--overwrite")
        taint_args = [t for t in taints if not t.endswith("-")]
        taint_args += [t for t in taints if t.endswith("-")]
        taint_args += [_removal(t) for t in (old_taints or []) if t not in taints]
        if taint_args:
            self.kubectl(ops, "taint", "node", name, *taint_args, "--overwrite")

    # ---- the lifecycle, one method per action kind ----
    # What every distribution does around its own commands is written here once: a node that
    # joins is waited for and labelled; a node that upgrades is drained, restarted on its new
    # binaries, waited for at the new version and uncordoned. A distribution gives the
    # install_* and restart_upgraded steps (k0s, whose controllers are no nodes, also its own
    # init, join_master and upgrade_master).

    def init(self, ops: NodeOps, ip: str) -> None:
        self.install_first_master(ops, ip)
        self.node_joined(ops, ip)

    def join_master(self, ops: NodeOps, ip: str) -> None:
        self.install_master(ops, ip)
        self.node_joined(ops, ip)

    def join_worker(self, ops: NodeOps, ip: str) -> None:
        self.install_worker(ops, ip)
        self.node_joined(ops, ip)

    def node_joined(self, ops: NodeOps, ip: str) -> None:
        """A node that joined is Ready, then gets the Clusterfile's labels and taints."""
        self.wait_ready(ops, ip)
        self.set_labels_and_taints(ops, ip)

    def upgrade_master(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        self.restart_upgraded(ops, ip, master=True)
        self.wait_ready(ops, ip, ops.version)
        self.uncordon(ops, ip)

    def upgrade_worker(self, ops: NodeOps, ip: str) -> None:
        self.cordon(ops, ip)
        self.drain(ops, ip)
        self.restart_upgraded(ops, ip, master=False)
        self.wait_ready(ops, ip, ops.version)
        self.uncordon(ops, ip)

    def install_first_master(self, ops: NodeOps, ip: str) -> None:
        """Start the control plane on the first master (skipped when it runs already)."""
        raise NotImplementedError

    def install_master(self, ops: NodeOps, ip: str) -> None:
        """Join this master's control plane to the cluster (skipped when it joined)."""
        raise NotImplementedError

    def install_worker(self, ops: NodeOps, ip: str) -> None:
        """Join this worker to the cluster (a joined one whose node was deleted: again)."""
        raise NotImplementedError

    def restart_upgraded(self, ops: NodeOps, ip: str, master: bool) -> None:
        """The new binaries are in place (the new rootfs' init.sh): run them."""
        raise NotImplementedError

    def delete_master(self, ops: NodeOps, ip: str) -> None:
        raise NotImplementedError

    def delete_worker(self, ops: NodeOps, ip: str) -> None:
        raise NotImplementedError

    def forget_member(self, ops: NodeOps, ip: str) -> None:
        """A master that left without running its own leave step (it did not answer): remove
        its etcd member through the bootstrap master, or the cluster keeps counting it for
        quorum. Nothing by default: where deleting the node does it (k3s)."""

    def reset(self, ops: NodeOps, ip: str, master: bool) -> None:
        raise NotImplementedError

    # ---- what a refresh reads (read-only) ----

    version_command = ""  # prints the version of the installed binaries
    admin_kubeconfig_command = ""  # prints the admin kubeconfig (on a master)
    service_units: tuple[str, ...] = ()  # one of them is active when the runtime runs
    cert_file = ""  # the API server's serving certificate on a master ("" not read)

    def parse_version(self, text: str) -> str | None:
        """vX.Y.Z from version_command's output, None when nothing is installed."""
        m = re.search(r"v\d+\.\d+\.\d+", text)
        return m.group(0) if m else None

    @property
    def probe(self) -> RuntimeProbe:
        """How a refresh reads this runtime's version and services on a host."""
        return RuntimeProbe(
            self.version_command, self.service_units, self.parse_version, self.cert_file
        )

    def etcd_members(self, ops: NodeOps) -> set[str]:
        """Names of the etcd members, as the control plane reports them."""
        raise NotImplementedError


# A container's waiting reasons that mean its image could not be had (the kubelet's).
IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


def image_pull_failures(pods_json: str) -> list[dict]:
    """The containers of `kubectl get pods -A -o json` that wait for an image they cannot
    get: [{pod: NAMESPACE/NAME, node, container, image, reason, message}], sorted."""
    failures = []
    for pod in json.loads(pods_json).get("items") or []:
        meta, spec, status = (pod.get(k) or {} for k in ("metadata", "spec", "status"))
        for c in (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        ):
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in IMAGE_PULL_REASONS:
                failures.append(
                    {
                        "pod": f"{meta.get('namespace', '')}/{meta.get('name', '')}",
                        "node": str(spec.get("nodeName") or ""),
                        "container": str(c.get("name") or ""),
                        "image": str(c.get("image") or ""),
                        "reason": waiting["reason"],
                        "message": str(waiting.get("message") or ""),
                    }
                )
    return sorted(failures, key=lambda f: (f["pod"], f["container"]))


def is_ready(node: dict) -> bool:
    """A node of `kubectl get nodes -o json` whose Ready condition is True."""
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )


def internal_ip(node: dict) -> str:
    """A node's InternalIP ("" when it reports none)."""
    addresses = {a.get("type"): a.get("address") for a in node["status"].get("addresses", [])}
    return addresses.get("InternalIP") or ""


def _removal(taint: str) -> str:
    """`key=value:Effect` -> `key:Effect-` (kubectl's removal syntax)."""
    key_value, _, effect = taint.rpartition(":")
    return f"{key_value.split('=')[0]}:{effect}-" if key_value else f"{taint}-"


HOST_LOCK = "/var/lib/sealer/.step.lock"
RAN = "sealer-step-ran"


def guarded(
    ops: NodeOps,
    ip: str,
    done: str,
    command: str,
    *,
    when_done: str = "",
    stdin: bytes = b"",
    secrets: tuple[str, ...] = (),
) -> bool:
    """Run command on the host unless `done` (a shell test) says its work is there already;
    then run `when_done` instead, if given (in the same round trip). True if command ran.

    The test and the command run under one host-wide lock: when an earlier sealer was killed
    while the same step was still running there, this one waits for it, sees it done and
    does not run the step a second time.
    """
    script = f"if {done}; then {when_done or ':'}; else {command} && echo {RAN}; fi"
    result = ops.run(
        ip,
        f"mkdir -p /var/lib/sealer && flock {HOST_LOCK} bash -c {shlex.quote(script)}",
        stdin=stdin,
        secrets=secrets,
    )
    lines = result.stdout.strip().splitlines()
    return bool(lines) and lines[-1] == RAN
