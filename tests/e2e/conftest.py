"""End-to-end fixtures: fresh sandbox hosts for every test, and ways to look inside them."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from cluster.model import SSH
from executors.driver import Driver
from sandbox import hosts as sandbox
from tests.helpers import ROOT, sealer

HOSTS = 7
IMAGES = ROOT / "examples" / "images"
OLD, NEW = "v1.25.3", "v1.26.1"


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture
def hosts(sandbox_dir, monkeypatch):
    """HOSTS fresh sandbox hosts (new root filesystems, new host keys) for this test."""
    monkeypatch.setenv("SEALER_SANDBOX_DIR", str(sandbox_dir))
    sandbox.down()
    started = sandbox.up(HOSTS)
    yield started
    sandbox.down()


def ip(n: int) -> str:
    return sandbox.address(n)


class Cluster:
    """A Clusterfile on sandbox hosts, and the commands a test runs against it."""

    def __init__(self, folder: Path, runtime: str, name: str = "e2e"):
        self.folder = folder
        self.runtime = runtime
        self.name = name
        self.path = folder / "Clusterfile"

    def write(
        self,
        masters: list[int],
        workers: list[int],
        version: str = OLD,
        *,
        ssh: dict | None = None,
        worker_extra: dict | None = None,
        more_groups: list[dict] = (),
        **spec,
    ) -> Path:
        """Write the Clusterfile: masters and workers by host number; extra settings as YAML."""
        groups = [{"ips": [ip(n) for n in masters], "roles": ["master"]}]
        if workers:
            groups.append(
                {"ips": [ip(n) for n in workers], "roles": ["node"], **(worker_extra or {})}
            )
        doc = {
            "apiVersion": "sealer.io/v2",
            "kind": "Cluster",
            "metadata": {"name": self.name},
            "spec": {
                "image": str(IMAGES / f"{self.runtime}-{version}"),
                "ssh": {"user": "root", "pk": str(sandbox.key_path()), "port": "22", **(ssh or {})},
                "hosts": groups + list(more_groups),
                **spec,
            },
        }
        self.path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.path

    def sealer(self, *args: str, timeout: float = 300):
        return sealer(*args, "-f", str(self.path), timeout=timeout)

    def apply(self, *extra: str, expect: int = 0):
        result = self.sealer("apply", "--auto-approve", *extra)
        assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    def state_path(self) -> Path:
        from cluster.image import sealer_home

        return sealer_home() / "state" / f"{self.name}.json"

    def state(self) -> dict:
        return json.loads(self.sealer("show", "--json").stdout)


@pytest.fixture(params=["kubernetes", "k3s", "k0s"])
def cluster(request, hosts, tmp_path):
    return Cluster(tmp_path, request.param)


def ssh(n: int, command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command on sandbox host n with the real OpenSSH client."""
    result = subprocess.run(
        [
            "ssh",
            "-i",
            str(sandbox.key_path()),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"root@{ip(n)}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, f"{ip(n)}: {command}: {result.stderr}"
    return result


def ssh_driver(*numbers: int) -> Driver:
    """sealer's SSH driver for sandbox hosts by number, as root with the sandbox key."""
    return Driver({ip(n): SSH(user="root", key_file=str(sandbox.key_path())) for n in numbers})


def host(n: int) -> sandbox.SandboxHost:
    return next(h for h in sandbox.hosts() if h.number == n)


def command_log(n: int) -> list[dict]:
    """Every stand-in command run on host n (read without SSH, from inside the host)."""
    out = sandbox.run_in(
        host(n), ["sh", "-c", "cat /var/log/sandbox-standin/commands.log 2>/dev/null; true"]
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def api(n: int, path: str):
    """The control-plane stand-in's own view (nodes, etcd members, history) on host n."""
    with urllib.request.urlopen(f"http://{ip(n)}:6443{path}", timeout=10) as response:
        return json.loads(response.read())


def node_versions(n: int) -> dict[str, str]:
    return {name: node["version"] for name, node in api(n, "/nodes").items()}
