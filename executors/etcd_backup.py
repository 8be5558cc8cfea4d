"""etcd snapshots of a kubeadm cluster's stacked etcd: save from a healthy member, restore on
every master (the procedure of the etcd and kubeadm documentation).

Restore: the snapshot goes to every master; the kubelet stops etcd and kube-apiserver when
their static pod manifests are moved away; each member's data is rebuilt with `etcdctl
snapshot restore` (its name and peer URL as its manifest says, the same initial cluster on
all); the manifests go back and the kubelet starts the restored cluster.
"""

from __future__ import annotations

import base64
import shlex

from cluster.errors import SealerError
from executors.driver import Driver
from executors.runtimes.kubernetes import etcdctl

SNAPSHOT = "/var/lib/sealer/etcd-snapshot.db"
MANIFESTS = "/etc/kubernetes/manifests"
PARKED = "/etc/kubernetes/manifests.sealer-restore"
POD_MANIFESTS = ("etcd.yaml", "kube-apiserver.yaml")
DATA_DIR = "/var/lib/etcd"


def healthy_members(driver: Driver, masters: list[str]) -> list[str]:
    healthy = []
    for ip in masters:
        try:
            if driver.host(ip).run(etcdctl(ip, "endpoint", "health"), check=False).exit_code == 0:
                healthy.append(ip)
        except SealerError:
            continue  # unreachable: not healthy
    return healthy


def require_quorum(driver: Driver, masters: list[str], what: str) -> list[str]:
    healthy = healthy_members(driver, masters)
    if len(healthy) < len(masters) // 2 + 1:
        raise SealerError(
            f"{what}: etcd has no quorum ({len(healthy)} of {len(masters)} members healthy: "
            f"{', '.join(healthy) or 'none'}); a snapshot now would not be consistent"
        )
    return healthy


def save(driver: Driver, masters: list[str]) -> tuple[str, bytes]:
    """A snapshot from the first healthy member: (its address, the snapshot's bytes)."""
    ip = require_quorum(driver, masters, "etcd backup")[0]
    script = (
        f"install -d -m 0700 /var/lib/sealer && umask 077 && "
        f"{etcdctl(ip, 'snapshot', 'save', SNAPSHOT)} >/dev/null && base64 -w0 {SNAPSHOT}; "
        f"status=$?; rm -f {SNAPSHOT}; exit $status"
    )
    out = driver.host(ip).run(script).stdout
    return ip, base64.b64decode(out.strip())


def restore(driver: Driver, members: dict[str, str], snapshot: bytes) -> None:
    """members: master address -> its etcd member name (the host's name)."""
    peer_urls = {}
    for ip in members:  # every master answers before anything is stopped
        found = (
            driver.host(ip)
            .run(
                f"grep -o -- '--initial-advertise-peer-urls=[^\\\" ,]*' {MANIFESTS}/etcd.yaml "
                f"{PARKED}/etcd.yaml 2>/dev/null | head -n 1 | cut -d= -f2-",
                check=False,
            )
            .stdout.strip()
        )
        if not found:
            raise SealerError(f"{ip}: no etcd static pod manifest: not a kubeadm master")
        peer_urls[ip] = found
    initial = ",".join(f"{members[ip]}={peer_urls[ip]}" for ip in members)
    moved = " ".join(f"{MANIFESTS}/{m}" for m in POD_MANIFESTS)
    stopped = (
        'for i in $(seq 150); do test -z "$(crictl ps --name etcd -q)'
        '$(crictl ps --name kube-apiserver -q)" && exit 0; sleep 0.2; done; exit 1'
    )
    for ip in members:
        driver.host(ip).run(
            f"install -d -m 0700 /var/lib/sealer && (umask 077 && cat > {SNAPSHOT}) && "
            f"install -d {PARKED} && {{ mv -f {moved} {PARKED}/ 2>/dev/null || true; }} && "
            f"bash -c {shlex.quote(stopped)}",
            stdin=snapshot,
        )
    for ip in members:
        command = shlex.join(
            [
                "etcdctl",
                "snapshot",
                "restore",
                SNAPSHOT,
                f"--name={members[ip]}",
                f"--initial-cluster={initial}",
                "--initial-cluster-token=sealer-restore",
                f"--initial-advertise-peer-urls={peer_urls[ip]}",
                f"--data-dir={DATA_DIR}",
            ]
        )
        driver.host(ip).run(
            f"rm -rf {DATA_DIR} && ETCDCTL_API=3 {command} >/dev/null && rm -f {SNAPSHOT} && "
            f"mv -f {PARKED}/*.yaml {MANIFESTS}/ && rmdir {PARKED}"
        )
    # Done when every master's API server answers again (each needs etcd's quorum first).
    back = "for i in $(seq 250); do kubectl get nodes >/dev/null 2>&1 && exit 0; sleep 0.2; done"
    for ip in members:
        if driver.host(ip).run(f"bash -c {shlex.quote(back + '; exit 1')}", check=False).exit_code:
            raise SealerError(f"{ip}: the API server did not come back after the restore")
