"""A recorded-command double of executors.driver.Driver, for operation tests without SSH.

It plays a small k3s/kubeadm cluster well enough for the operations' rules: hostnames, the
facts a refresh reads, `kubectl get nodes -o json` from the bootstrap master; every other
command succeeds with no output unless a test makes it fail. The e2e suite keeps the real hosts.
"""

from __future__ import annotations

import json
import threading

from executors.driver import HostError, Result


class FakeCluster:
    def __init__(self, nodes: dict[str, str], version: str = "v1.25.3"):
        self.nodes = dict(nodes)  # ip -> node name (the host's hostname)
        self.version = version
        self.labels: dict[str, dict] = {}  # node name -> extra labels the cluster reports
        self.failing: dict[str, str] = {}  # ip -> a command fragment that fails there
        self.down: set[str] = set()  # unreachable hosts
        self.commands: list[tuple[str, str]] = []  # (ip, command), in order
        self.uploads: list[tuple[str, str]] = []
        self.kubeconfig = "apiVersion: v1\nkind: Config\n"
        self._lock = threading.Lock()

    def connect(self, hosts, timeouts, pinned):
        """SSHSettings.connect: the driver of one run."""
        return FakeDriver(self, set(hosts))

    def ran(self, ip: str | None = None) -> list[str]:
        return [c for host, c in self.commands if ip is None or host == ip]

    def answer(self, ip: str, command: str) -> Result:
        with self._lock:
            self.commands.append((ip, command))
        if ip in self.down:
            raise HostError(ip, "cannot connect: Connection refused", unreachable=True)
        fragment = self.failing.get(ip)
        if fragment and fragment in command:
            return Result(1, "", f"{fragment}: failed")
        name = self.nodes.get(ip, f"host-{ip}")
        if command.startswith("echo hostname="):  # the refresh facts
            return Result(
                0, f"hostname={name}\nmarker=\nversion={self.version}\nservices=active\n", ""
            )
        if "pc_swap_kb" in command:  # the host checks' read of a joining host (identity part)
            return Result(0, f"hostname={name}\nmarker=\nmachine=x86_64\n", "")
        if command.startswith("hostname"):
            return Result(0, f"{name}\n", "")
        if "get nodes -o json" in command:
            return Result(
                0, json.dumps({"items": [self._node(n, a) for a, n in self.nodes.items()]}), ""
            )
        if "kubeconfig" in command or "k3s.yaml" in command or "admin.conf" in command:
            return Result(0, self.kubeconfig, "")
        return Result(0, "", "")

    def _node(self, name: str, address: str) -> dict:
        return {
            "metadata": {"name": name, "labels": self.labels.get(name, {})},
            "spec": {},
            "status": {
                "addresses": [{"type": "InternalIP", "address": address}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": self.version},
            },
        }


class FakeDriver:
    def __init__(self, cluster: FakeCluster, known: set[str]):
        self.cluster = cluster
        self.known = known
        self.closed = False

    def host(self, ip: str) -> FakeRemote:
        if ip not in self.known:
            raise HostError(ip, "no SSH settings for this host")
        return FakeRemote(self.cluster, ip)

    reader = host  # no connections shared across runs here

    def close(self) -> None:
        self.closed = True


class FakeRemote:
    def __init__(self, cluster: FakeCluster, ip: str):
        self.cluster, self.ip = cluster, ip

    def run(self, command, *, env=None, stdin=b"", check=True, timeout=None, secrets=()):
        result = self.cluster.answer(self.ip, command)
        if check and result.exit_code != 0:
            raise HostError(self.ip, f"`{command}` exited with {result.exit_code}")
        return result

    def upload(self, command, path, timeout=None, *, alone=False):
        self.cluster.uploads.append((self.ip, command))
        return self.run(command)

    def follow(self, command, *, env=None, stdin=b""):
        raise HostError(self.ip, "no long-running commands here")  # joins fall back to polling

    def host_key(self) -> str:
        return f"SHA256:key-of-{self.ip}"

    def close(self) -> None:
        pass
