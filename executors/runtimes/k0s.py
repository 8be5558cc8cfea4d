"""k0s: controllers (not Kubernetes nodes) and workers joined with k0s tokens."""

from __future__ import annotations

import copy
import json
import shlex
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from cluster.errors import SealerError
from cluster.model import DrainPolicy
from executors.runtimes.base import DEFAULT_DRAIN, ImageInputs, NodeOps, Runtime, guarded

CONFIG = "/etc/k0s/k0s.yaml"
TOKEN_FILE = "/etc/k0s/join-token"
UNITS = "/etc/systemd/system"
CONFIG_FROM_STDIN = f"install -d /etc/k0s && cat > {CONFIG}"
KUBECONFIG = "install -d -m 0700 $HOME/.kube && k0s kubeconfig admin > $HOME/.kube/config"


class K0s(Runtime):
    name = "k0s"
    kubectl_command = "k0s kubectl"

    version_command = "k0s version"
    admin_kubeconfig_command = "k0s kubeconfig admin"
    service_units = ("k0scontroller", "k0sworker")

    def etcd_members(self, ops: NodeOps) -> set[str]:
        out = ops.run(ops.bootstrap, "k0s etcd member-list").stdout
        return set(json.loads(out)["members"])

    def _wait_member(self, ops: NodeOps, ip: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while ops.name(ip) not in self.etcd_members(ops):
            if time.monotonic() > deadline:
                raise SealerError(f"{ip}: controller did not join etcd")
            time.sleep(0.2)

    def __init__(self, drain: DrainPolicy = DEFAULT_DRAIN, image: ImageInputs | None = None):
        self.config: dict = {}  # the image's etc/k0s.yaml
        super().__init__(drain, image)

    def configure(self, image: ImageInputs) -> None:
        path = Path(image.rootfs) / "etc" / "k0s.yaml"
        if path.is_file():
            loaded = yaml.safe_load(path.read_text())
            self.config = loaded if isinstance(loaded, dict) else {}

    def _controller_config(self, ops: NodeOps, ip: str) -> str:
        """The image's k0s.yaml with this controller's API address and the cluster's
        endpoint: k0s puts spec.api.externalAddress into join tokens and kubeconfigs."""
        name, port = ops.endpoint
        api = {"address": ops.address(ip), "externalAddress": name, "port": port}
        api["sans"] = list(dict.fromkeys([name, *ops.masters, "127.0.0.1"]))
        config = copy.deepcopy(self.config) or {
            "apiVersion": "k0s.k0sproject.io/v1beta1",
            "kind": "ClusterConfig",
            "metadata": {"name": "k0s"},
        }
        config.setdefault("spec", {}).setdefault("api", {}).update(api)
        return yaml.safe_dump(config, sort_keys=False)

    # Controllers run no kubelet: they are no nodes to wait for, label, drain or uncordon,
    # so k0s gives its own init, join_master and upgrade_master (etcd membership instead).

    def init(self, ops: NodeOps, ip: str) -> None:
        guarded(
            ops,
            ip,
            f"test -f {UNITS}/k0scontroller.service",
            f"{CONFIG_FROM_STDIN} && k0s install controller -c {CONFIG} && k0s start",
            stdin=self._controller_config(ops, ip).encode(),
        )
        ops.run(ip, KUBECONFIG)

    def _token(self, ops: NodeOps, role: str) -> str:
        return self.secret(
            role, lambda: ops.run(ops.bootstrap, f"k0s token create --role={role}").stdout.strip()
        )

    def _install_with_token(
        self, ops: NodeOps, ip: str, role: str, install: str, config: str = ""
    ) -> bool:
        """Token file (through stdin, then the config if any) and `k0s install`, unless an
        earlier run installed it."""
        token = self._token(ops, role)
        unit = "k0scontroller" if role == "controller" else "k0sworker"
        return guarded(
            ops,
            ip,
            f"test -f {UNITS}/{unit}.service",
            # `read` (a builtin: no argv) takes the first line only, leaving the config.
            f"install -d /etc/k0s && (umask 077 && IFS= read -r t && printf '%s\\n' \"$t\" > {TOKEN_FILE})"
            f"{' && ' + CONFIG_FROM_STDIN if config else ''} && {install} && k0s start",
            stdin=(token + "\n" + config).encode(),
            secrets=(token,),
        )

    def join_master(self, ops: NodeOps, ip: str) -> None:
        self._install_with_token(
            ops,
            ip,
            "controller",
            f"k0s install controller --token-file {TOKEN_FILE} -c {CONFIG}",
            config=self._controller_config(ops, ip),
        )
        ops.run(ip, KUBECONFIG)
        self._wait_member(ops, ip)

    def install_worker(self, ops: NodeOps, ip: str) -> None:
        node_ip = f"--kubelet-extra-args=--node-ip={ops.address(ip)}"
        install = shlex.join(["k0s", "install", "worker", "--token-file", TOKEN_FILE, node_ip])
        if not self._install_with_token(ops, ip, "worker", install):
            ops.run(ip, "k0s stop && k0s start")  # joined before: a restart re-registers it

    def _stop_and_reset(self, ops: NodeOps, ip: str) -> None:
        ops.run(ip, "command -v k0s >/dev/null || exit 0; k0s stop || true; k0s reset")

    def delete_master(self, ops: NodeOps, ip: str) -> None:
        if ops.name(ip) in self.etcd_members(ops):
            ops.run(ip, f"k0s etcd leave --peer-address {ops.address(ip)}")
        self._stop_and_reset(ops, ip)

    def forget_member(self, ops: NodeOps, ip: str) -> None:
        """k0s etcd leave --peer-address, run on a controller that stays."""
        peers = json.loads(ops.run(ops.bootstrap, "k0s etcd member-list").stdout)["members"]
        if any(urlsplit(url).hostname == ops.address(ip) for url in peers.values()):
            ops.run(ops.bootstrap, f"k0s etcd leave --peer-address {ops.address(ip)}")

    def delete_worker(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        self.delete_node(ops, ip)
        self._stop_and_reset(ops, ip)

    def upgrade_master(self, ops: NodeOps, ip: str) -> None:
        # The new binary is in place (the new rootfs' init.sh): stop, start.
        self.restart_upgraded(ops, ip, master=True)
        self._wait_member(ops, ip)

    def restart_upgraded(self, ops: NodeOps, ip: str, master: bool) -> None:
        ops.run(ip, "k0s stop && k0s start")

    def reset(self, ops: NodeOps, ip: str, master: bool) -> None:
        self._stop_and_reset(ops, ip)
