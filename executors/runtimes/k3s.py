"""k3s: servers with embedded etcd (--cluster-init, then --server), agents, uninstall scripts."""

from __future__ import annotations

import secrets as random_secrets
import shlex

import yaml

from executors.runtimes.base import NodeOps, Runtime, guarded

CONFIG = "/etc/rancher/k3s/config.yaml"
TOKEN_FILE = "/var/lib/rancher/k3s/server/token"
UNITS = {"server": "k3s", "agent": "k3s-agent"}


class K3s(Runtime):
    name = "k3s"

    version_command = "k3s --version"
    admin_kubeconfig_command = "cat /etc/rancher/k3s/k3s.yaml"
    service_units = ("k3s", "k3s-agent")

    def etcd_members(self, ops: NodeOps) -> set[str]:
        """k3s labels the nodes that carry an embedded etcd member."""
        return {
            name
            for name, node in self.nodes(ops).items()
            if "node-role.kubernetes.io/etcd" in node["metadata"].get("labels", {})
        }

    def _config(self, ops: NodeOps, ip: str, token: str, **settings) -> str:
        """/etc/rancher/k3s/config.yaml, serialized as YAML (labels come from the Clusterfile)."""
        config = {"token": token, "node-ip": ops.address(ip)}
        config.update({k.replace("_", "-"): v for k, v in settings.items()})
        labels = [f"{k}={v}" for k, v in ops.labels(ip).items()]
        if labels:
            config["node-label"] = labels
        return yaml.safe_dump(config, sort_keys=False)

    def _server_settings(self, ops: NodeOps) -> dict:
        name, _ = ops.endpoint
        return {"tls_san": [name, *ops.masters]}

    def _server_url(self, ops: NodeOps) -> str:
        name, port = ops.endpoint
        return f"https://{name}:{port}"

    def _install(self, ops: NodeOps, ip: str, kind: str, config: str, token: str) -> None:
        """Config (through stdin: it holds the token), service unit and start. A service that
        already runs is restarted instead: it re-registers a node that was deleted."""
        unit = UNITS[kind]
        unit_text = (
            f"[Unit]\nDescription=k3s {kind}\n[Service]\n"
            f"ExecStart=/usr/local/bin/k3s {kind}\nRestart=always\n"
            # Without it `systemctl enable` enables nothing, and a rebooted node stays down.
            "[Install]\nWantedBy=multi-user.target\n"
        )
        path = f"/etc/systemd/system/{unit}.service"
        installed = f"test -f {path}"
        guarded(
            ops,
            ip,
            installed,
            f"install -d /etc/rancher/k3s /etc/systemd/system && "
            f"(umask 077 && cat > {CONFIG}) && printf %s {shlex.quote(unit_text)} > {path}.new"
            # `systemctl enable` reloads the manager's configuration itself (unless
            # --no-reload), so a separate daemon-reload would only reload everything twice.
            f" && mv {path}.new {path} && systemctl enable --now {unit}",
            # Installed by an earlier run: make sure it runs (a restart re-registers a node
            # that was deleted). One round trip either way.
            when_done=f"{{ systemctl is-active {unit} >/dev/null && systemctl restart {unit} "
            f"|| systemctl start {unit}; }}",
            stdin=config.encode(),
            secrets=(token,),
        )

    def _server_token(self, ops: NodeOps) -> str:
        return self.secret(
            "token", lambda: ops.run(ops.bootstrap, f"cat {TOKEN_FILE}").stdout.strip()
        )

    def install_first_master(self, ops: NodeOps, ip: str) -> None:
        token = random_secrets.token_hex(24)  # used only if k3s is not running yet
        config = self._config(ops, ip, token, cluster_init=True, **self._server_settings(ops))
        self._install(ops, ip, "server", config, token)

    def install_master(self, ops: NodeOps, ip: str) -> None:
        token = self._server_token(ops)
        config = self._config(
            ops, ip, token, server=self._server_url(ops), **self._server_settings(ops)
        )
        self._install(ops, ip, "server", config, token)

    def install_worker(self, ops: NodeOps, ip: str) -> None:
        token = self._server_token(ops)
        config = self._config(ops, ip, token, server=self._server_url(ops))
        self._install(ops, ip, "agent", config, token)

    def delete_master(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        self.delete_node(ops, ip)  # k3s removes the node's etcd member with it
        ops.run(ip, "test ! -x /usr/local/bin/k3s-uninstall.sh || k3s-uninstall.sh")

    def delete_worker(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        self.delete_node(ops, ip)
        ops.run(ip, "test ! -x /usr/local/bin/k3s-agent-uninstall.sh || k3s-agent-uninstall.sh")

    def restart_upgraded(self, ops: NodeOps, ip: str, master: bool) -> None:
        """The same service, with the same arguments, on the new binary."""
        ops.run(ip, f"systemctl restart {UNITS['server' if master else 'agent']}")

    def reset(self, ops: NodeOps, ip: str, master: bool) -> None:
        script = "k3s-uninstall.sh" if master else "k3s-agent-uninstall.sh"
        ops.run(ip, f"test ! -x /usr/local/bin/{script} || {script}")
