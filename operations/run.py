"""`sealer run IMAGE --masters ... --nodes ...`: write a Clusterfile for the flags, then apply
it, as sealer's own `run` does. Without --masters, IMAGE (an application image, usually) runs
on an existing cluster: its Clusterfile (-f, or the one an earlier `run` wrote) with spec.image
set to IMAGE, written beside the others under SEALER_HOME, is applied."""

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
PASSPHRASE_VARIABLE = "SEALER_RUN_SSH_KEY_PASSPHRASE"


@dataclass(frozen=True)
class RunRequest:
    image: str  # NAME:TAG in the store, or a rootfs path
    masters: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    clusterfile: str = ""  # the running cluster's Clusterfile (no --masters)
    apps: tuple[str, ...] = ()  # spec.appNames
    cmds: tuple[str, ...] = ()  # spec.cmd
    name: str = "my-cluster"
    user: str = "root"
    password: str = field(default="", repr=False)  # a secret: never written to disk
    key_file: str = ""
    key_passphrase: str = field(default="", repr=False)  # --pk-passwd: a secret too
    port: int = 22
    env: tuple[str, ...] = ()  # -e K=V: spec.env
    apply: ApplyRequest = ApplyRequest()


@dataclass(frozen=True)
class RunResult:
    clusterfile: Path
    applied: ApplyResult


def run(request: RunRequest, listener: Listener) -> RunResult:
    if request.masters and request.clusterfile:
        raise SealerError("give --masters (a new cluster) or -f (a running one), not both")
    if not request.masters:
        return _run_on_existing(request, listener)
    return _run_new(request, listener)


def _image_ref(image: str) -> str:
    return str(Path(image).resolve()) if Path(image).exists() else image


def _run_on_existing(request: RunRequest, listener: Listener) -> RunResult:
    import yaml

    base = Path(request.clusterfile or sealer_home() / "clusters" / request.name / "Clusterfile")
    if not base.is_file():
        raise SealerError(
            f"{base}: no such Clusterfile; give --masters for a new cluster, or -f with the "
            f"Clusterfile of the running cluster"
        )
    try:
        docs = [d for d in yaml.safe_load_all(base.read_text()) if d is not None]
    except (yaml.YAMLError, OSError) as e:
        raise SealerError(f"{base}: cannot read the Clusterfile: {e}") from None
    clusters = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Cluster"]
    if len(clusters) != 1 or not isinstance(clusters[0].get("spec"), dict):
        raise SealerError(f"{base}: expected one Cluster document with a spec")
    name = (clusters[0].get("metadata") or {}).get("name") or request.name
    if cluster_name_problem(name):
        raise SealerError(f"{base}: metadata.name {name!r} {cluster_name_problem(name)}")
    spec = clusters[0]["spec"]
    spec["image"] = _image_ref(request.image)
    if request.apps:
        spec["appNames"] = list(request.apps)
    if request.cmds:
        spec["cmd"] = list(request.cmds)
    if request.env:  # -e K=V on top of the cluster's own env (the last duplicate wins)
        spec["env"] = [*(spec.get("env") or []), *request.env]
    folder = sealer_home() / "clusters" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"Clusterfile.run-{_safe(request.image)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold passwords
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump_all(docs, sort_keys=False))
    listener.note(f"Wrote {path} (from {base}, spec.image {request.image})")
    applying = replace(request.apply, clusterfile=str(path), plan_file=None, auto_approve=True)
    return RunResult(path, apply(applying, listener))


def _safe(image: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(image).name)[:80]


def _run_new(request: RunRequest, listener: Listener) -> RunResult:
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
    if request.key_passphrase:  # as the password: the file names a variable
        if not request.key_file:
            raise SealerError("--pk-passwd is the passphrase of --pk; give --pk too")
        os.environ[PASSPHRASE_VARIABLE] = request.key_passphrase
        ssh["pkPasswd"] = "${" + PASSPHRASE_VARIABLE + "}"
    image = _image_ref(request.image)
    hosts = [{"ips": list(request.masters), "roles": ["master"]}]
    if request.nodes:
        hosts.append({"ips": list(request.nodes), "roles": ["node"]})
    doc = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": request.name},
        "spec": {"image": image, "ssh": ssh, "hosts": hosts},
    }
    if request.env:
        doc["spec"]["env"] = list(request.env)
    if request.apps:
        doc["spec"]["appNames"] = list(request.apps)
    if request.cmds:
        doc["spec"]["cmd"] = list(request.cmds)
    path = folder / "Clusterfile"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    listener.note(f"Wrote {path}")
    applying = replace(request.apply, clusterfile=str(path), plan_file=None, auto_approve=True)
    return RunResult(path, apply(applying, listener))
