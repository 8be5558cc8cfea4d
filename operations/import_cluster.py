"""`sealer import`: adopt a running cluster into the state, changing no host.

From a Clusterfile (no host contacted), or with --discover from what one master reports
(read-only), writing the Clusterfile too.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cluster import image as images
from cluster.digests import configs_digest, launch_digest
from cluster.errors import SealerError
from cluster.model import MASTER, SSH, WORKER
from cluster.names import cluster_name_problem
from cluster.outputs import write_output
from cluster.records import State, host_record
from operations.common import (
    SSHSettings,
    StateRef,
    connect,
    load_cluster,
    locked_state,
    write_state,
)
from operations.events import Listener
from planner import registry as registry_rules


@dataclass(frozen=True)
class ImportRequest:
    clusterfile: str
    state: StateRef = StateRef()
    hostnames: dict = field(default_factory=dict)  # ip -> node name, when discovered
    # Discovered from a running cluster: its launch commands, apps and control plane are
    # taken as done, so the first plan does not run them again.
    running: bool = False


@dataclass(frozen=True)
class ImportResult:
    cluster: str
    hosts: int
    where: str


def import_cluster(request: ImportRequest, listener: Listener) -> ImportResult:
    cluster = load_cluster(request.clusterfile, listener)
    with locked_state(request.state, cluster.name, "import") as locked:
        current = locked.state
        if not current.is_empty:
            raise SealerError(
                f"{locked.backend.describe()}: a state with {len(current.hosts)} host(s) "
                f"already exists for cluster {cluster.name!r}; import only adopts a "
                f"cluster that has no state"
            )
        fresh = State.new(cluster.name)
        lineage = current.lineage if current.serial else fresh.lineage  # an emptied state
        version = cluster.image.version
        adopted = replace(
            fresh,
            lineage=lineage,
            serial=current.serial,
            image=cluster.image.record(),
            bootstrap_master=cluster.masters[0],
            configs_digest=configs_digest(cluster),
            hosts={
                ip: host_record(
                    host,
                    lineage=lineage,
                    version=version,
                    status="imported",
                    hostname=request.hostnames.get(ip, ""),
                )
                for ip, host in cluster.hosts.items()
            },
        )
        if request.running:
            # The registry as the image and the Clusterfile say it is served and used: drift
            # tells when a host does not (registry_unreachable, registry_config_changed).
            served, client = registry_rules.wanted(cluster, lineage)
            hosts = {
                ip: record.with_fields(
                    registry=client.get(ip, ""), registry_served=served.get(ip, "")
                )
                for ip, record in adopted.hosts.items()
            }
            adopted = replace(
                adopted,
                hosts=hosts,
                launch_digest=launch_digest(cluster.launch_cmds, cluster)
                if cluster.launch_cmds
                else None,
                apps={a.name: {"digest": a.digest, "image": a.image} for a in cluster.apps},
                control_plane=dict(cluster.control_plane) or None,
            )
        write_state(locked, adopted)
    return ImportResult(cluster.name, len(cluster.hosts), locked.backend.describe())


@dataclass(frozen=True)
class DiscoverRequest:
    master: str  # a master of the running cluster, reached over SSH
    image: str  # the ClusterImage it runs (NAME:TAG in the store, or a rootfs path)
    clusterfile: str  # written here (refused if it exists)
    name: str = "my-cluster"
    ssh: SSH = SSH()
    settings: SSHSettings = SSHSettings()
    state: StateRef = StateRef()


@dataclass(frozen=True)
class Discovered:
    imported: ImportResult
    clusterfile: str
    masters: list[str]
    workers: list[str]


PASSWORD_VARIABLE = "SEALER_SSH_PASSWORD"
PASSPHRASE_VARIABLE = "SEALER_SSH_KEY_PASSPHRASE"


def discover_and_import(request: DiscoverRequest, listener: Listener) -> Discovered:
    """Read a running cluster from one master (nodes, roles, versions, labels, taints), write
    a Clusterfile that describes it, and import that into the state: an existing cluster
    adopted without writing its Clusterfile by hand (sealer's `alpha gen`)."""
    target = Path(request.clusterfile)
    if target.exists():
        raise SealerError(f"{target}: exists; give -f a new path (import writes the Clusterfile)")
    problem = cluster_name_problem(request.name)
    if problem:
        raise SealerError(f"--name {request.name!r} {problem}")
    image = images.resolve(request.image, Path.cwd())
    if image.is_application:
        raise SealerError(f"--image {request.image}: an application image; give the cluster's")
    from executors.refresh import discover  # late: only discovery needs SSH

    driver = connect({request.master: request.ssh}, request.settings)
    try:
        found = discover(driver, request.master, image.runtime)
    finally:
        driver.close()
    hosts = _hosts_of(found, request.master, image.version, request.image)
    write_output(target, _clusterfile_text(request, image, hosts), mode=0o644)
    if request.ssh.password:  # the file names the variable; this run knows the value
        os.environ[PASSWORD_VARIABLE] = request.ssh.password
    if request.ssh.key_passphrase:
        os.environ[PASSPHRASE_VARIABLE] = request.ssh.key_passphrase
    listener.note(f"Wrote {target} ({len(hosts)} host(s) found from {request.master})")
    hostnames = {h["address"]: name for name, h in found.items()}
    try:
        imported = import_cluster(
            ImportRequest(str(target), request.state, hostnames, running=True), listener
        )
    except BaseException:
        target.unlink(missing_ok=True)  # nothing half-done: no state, no Clusterfile
        raise
    masters = [h["address"] for h in hosts if h["master"]]
    return Discovered(
        imported, str(target), masters, [h["address"] for h in hosts if not h["master"]]
    )


def _hosts_of(found: dict, source: str, version: str, image: str) -> list[dict]:
    """The discovered hosts, the master we asked first (it is the bootstrap master)."""
    hosts = []
    for name, host in sorted(found.items()):
        address = host.get("address") or ""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise SealerError(f"node {name}: no usable InternalIP ({address!r})") from None
        if host.get("version") and host["version"] != version:
            raise SealerError(
                f"node {name} ({address}) runs {host['version']}, the image {image} is "
                f"{version}; give the image the cluster runs"
            )
        hosts.append({**host, "address": address})
    if not any(h["master"] and h["address"] == source for h in hosts):
        raise SealerError(f"--master {source}: not a master of the cluster it reaches")
    hosts.sort(key=lambda h: (h["address"] != source, not h["master"]))
    return hosts


def _clusterfile_text(request: DiscoverRequest, image, hosts: list[dict]) -> str:
    """Hosts grouped by role, labels and taints, in discovery order."""
    import yaml

    ssh: dict = {"user": request.ssh.user, "port": request.ssh.port}
    if request.ssh.key_file:
        ssh["pk"] = str(Path(request.ssh.key_file).expanduser().resolve())
    if request.ssh.key_passphrase:
        ssh["pkPasswd"] = "${" + PASSPHRASE_VARIABLE + "}"
    if request.ssh.password:
        ssh["passwd"] = "${" + PASSWORD_VARIABLE + "}"
    groups: dict = {}
    for host in hosts:
        key = (host["master"], json.dumps(host["labels"], sort_keys=True), tuple(host["taints"]))
        group = groups.setdefault(key, {"ips": [], "roles": [MASTER if host["master"] else WORKER]})
        group["ips"].append(host["address"])
        if host["labels"]:
            group["labels"] = dict(host["labels"])
        if host["taints"]:
            group["taints"] = list(host["taints"])
    name = image.name if not Path(image.name).exists() else str(Path(image.name).resolve())
    doc = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": request.name},
        "spec": {"image": name, "ssh": ssh, "hosts": list(groups.values())},
    }
    header = (
        f"# Written by `sealer import --discover --master {request.master}`: the cluster as its "
        f"masters saw it.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False)
