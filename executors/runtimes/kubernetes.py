"""kubeadm: init, join with bootstrap tokens, drain / reset / delete node, kubeadm upgrade."""

from __future__ import annotations

import json
import re
import shlex

from cluster.errors import SealerError
from executors.runtimes.base import NodeOps, Runtime, guarded

KUBEADM_CONFIG = "/etc/kubernetes/kubeadm.yaml"
# What the bootstrap master prints, checked to the letter: its values go into commands run on
# other hosts, so a master that was taken over cannot smuggle a command into them.
JOIN = re.compile(
    r"kubeadm join ([A-Za-z0-9.:\[\]-]+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) "
    r"--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})"
)
CERTIFICATE_KEY = re.compile(r"^[0-9a-f]{64}$")
ETCDCTL_FLAGS = (
    "--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
    "--cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key"
)
JOINED = "test -f /etc/kubernetes/kubelet.conf"
COPY_ADMIN = "install -d -m 0700 $HOME/.kube && cp -f /etc/kubernetes/admin.conf $HOME/.kube/config"


class Kubeadm(Runtime):
    name = "kubernetes"

    def __init__(self, kubeadm_documents: str = ""):
        super().__init__()
        self.kubeadm_documents = kubeadm_documents  # the Clusterfile's kubeadm YAML, if any

    version_command = "kubelet --version"
    admin_kubeconfig_command = "cat /etc/kubernetes/admin.conf"
    service_units = ("kubelet",)

    def etcd_members(self, ops: NodeOps) -> set[str]:
        out = ops.run(ops.bootstrap, f"ETCDCTL_API=3 etcdctl {ETCDCTL_FLAGS} member list -w json")
        return {m["name"] for m in json.loads(out.stdout)["members"]}

    def _joined(self, ops: NodeOps, ip: str) -> bool:
        """Joined and still a node. A host joined before whose node was deleted is reset first,
        as kubeadm's preflight refuses to join over an old kubelet.conf."""
        on_host = ops.run(ip, "test -f /etc/kubernetes/kubelet.conf", check=False).exit_code == 0
        if on_host and not self.is_node(ops, ip):
            ops.run(ip, "kubeadm reset -f")
            return False
        return on_host

    def init(self, ops: NodeOps, ip: str) -> None:
        # Skipped when an earlier, interrupted run initialised this host already.
        guarded(
            ops,
            ip,
            "test -f /etc/kubernetes/admin.conf",
            f"install -d /etc/kubernetes && cat > {KUBEADM_CONFIG} && "
            f"kubeadm init --config={KUBEADM_CONFIG} --upload-certs",
            stdin=self._kubeadm_yaml(ops, ip).encode(),
        )
        ops.run(ip, COPY_ADMIN)
        self.wait_ready(ops, ip)
        self.set_labels_and_taints(ops, ip)

    def _kubeadm_yaml(self, ops: NodeOps, ip: str) -> str:
        address = ops.address(ip)
        return (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n"
            f"localAPIEndpoint:\n  advertiseAddress: {address}\n  bindPort: 6443\n"
            "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
            f"kubernetesVersion: {ops.version}\ncontrolPlaneEndpoint: {address}:6443\n"
            + (f"---\n{self.kubeadm_documents}" if self.kubeadm_documents else "")
        )

    def _join_command(self, ops: NodeOps) -> tuple[str, tuple[str, ...]]:
        out = self.secret(
            "join",
            lambda: ops.run(ops.bootstrap, "kubeadm token create --print-join-command").stdout,
        )
        m = JOIN.search(out)
        if not m:
            raise SealerError(f"{ops.bootstrap}: `kubeadm token create` printed no join command")
        endpoint, token, ca_hash = m.groups()
        argv = ["kubeadm", "join", endpoint, "--token", token]
        return shlex.join([*argv, "--discovery-token-ca-cert-hash", ca_hash]), (token,)

    def join_master(self, ops: NodeOps, ip: str) -> None:
        if not self._joined(ops, ip):
            command, secrets = self._join_command(ops)
            # The certificate key expires after 2 h: upload the certificates again each time.
            out = self.secret(
                "certificate-key",
                lambda: (
                    ops.run(ops.bootstrap, "kubeadm init phase upload-certs --upload-certs").stdout
                ),
            )
            key = out.strip().splitlines()[-1].strip()
            if not CERTIFICATE_KEY.match(key):
                raise SealerError(
                    f"{ops.bootstrap}: `kubeadm init phase upload-certs` printed no key"
                )
            guarded(
                ops,
                ip,
                JOINED,
                f"{command} --control-plane --certificate-key {key}",
                secrets=secrets + (key,),
            )
            ops.run(ip, COPY_ADMIN)
        self.wait_ready(ops, ip)
        self.set_labels_and_taints(ops, ip)

    def join_worker(self, ops: NodeOps, ip: str) -> None:
        if not self._joined(ops, ip):
            command, secrets = self._join_command(ops)
            guarded(ops, ip, JOINED, command, secrets=secrets)
        self.wait_ready(ops, ip)
        self.set_labels_and_taints(ops, ip)

    def _leave(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        ops.run(ip, "command -v kubeadm >/dev/null || exit 0; kubeadm reset -f")
        self.delete_node(ops, ip)

    delete_master = _leave  # `kubeadm reset` on a control-plane node removes its etcd member
    delete_worker = _leave

    def upgrade_master(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        if ip == ops.bootstrap:
            ops.run(ip, shlex.join(["kubeadm", "upgrade", "apply", ops.version, "-y"]))
        else:
            ops.run(ip, "kubeadm upgrade node")
        ops.run(ip, "systemctl restart kubelet")
        self.wait_ready(ops, ip, ops.version)
        self.uncordon(ops, ip)

    def upgrade_worker(self, ops: NodeOps, ip: str) -> None:
        self.cordon(ops, ip)
        self.drain(ops, ip)
        ops.run(ip, "kubeadm upgrade node")
        ops.run(ip, "systemctl restart kubelet")
        self.wait_ready(ops, ip, ops.version)
        self.uncordon(ops, ip)

    def reset(self, ops: NodeOps, ip: str, master: bool) -> None:
        ops.run(ip, "command -v kubeadm >/dev/null || exit 0; kubeadm reset -f")
