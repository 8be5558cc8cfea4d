"""`sealer run IMAGE --masters ... --nodes ...`: write a Clusterfile for the flags, then apply
it, as sealer's own `run` does."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cluster.errors import SealerError
from cluster.image import sealer_home
from cluster.names import cluster_name_problem
from operations.apply import ApplyRequest, ApplyResult, apply
from operations.events import Listener

PASSWORD_VARIABLE = "SEALER_RUN_SSH_PASSWORD"


@dataclass(frozen=True)
class RunRequest:
    image: str  # NAME:TAG in the store, or a rootfs path
    masters: tuple[str, ...]
    nodes: tuple[str, ...] = ()
    name: str = "my-cluster"
    user: str = "root"
    password: str = field(default="", repr=False)  # a secret: never written to disk
    key_file: str = ""
    port: int = 22
    apply: ApplyRequest = ApplyRequest()


@dataclass(frozen=True)
class RunResult:
    clusterfile: Path
    applied: ApplyResult


def run(request: RunRequest, listener: Listener) -> RunResult:
    import yaml

    if request.password and request.key_file:
        raise SealerError("--passwd and --pk are alternatives; give one")
    if cluster_name_problem(request.name):  # it names a folder: checked before any is made
        raise SealerError(f"--name {request.name!r} {cluster_name_problem(request.name)}")
    folder = sealer_home() / "clusters" / request.name
    folder.mkdir(parents=True, exist_ok=True)
    ssh: dict = {"user": request.user, "port": str(request.port)}
    if request.password:  # the file names an environment variable, never the password
        os.environ[PASSWORD_VARIABLE] = request.password
        ssh["passwd"] = "${" + PASSWORD_VARIABLE + "}"
    if request.key_file:
        ssh["pk"] = str(Path(request.key_file).expanduser().resolve())
    image = str(Path(request.image).resolve()) if Path(request.image).exists() else request.image
    hosts = [{"ips": list(request.masters), "roles": ["master"]}]
    if request.nodes:
        hosts.append({"ips": list(request.nodes), "roles": ["node"]})
    doc = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": request.name},
        "spec": {"image": image, "ssh": ssh, "hosts": hosts},
    }
    path = folder / "Clusterfile"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    listener.note(f"Wrote {path}")
    applying = replace(request.apply, clusterfile=str(path), plan_file=None, auto_approve=True)
    return RunResult(path, apply(applying, listener))
