"""kubeadm: init, join with bootstrap tokens, drain / reset / delete node, kubeadm upgrade."""

from __future__ import annotations

import json
import re
import shlex
import time
from urllib.parse import urlsplit

from cluster import kubeadm
from cluster.errors import SealerError
from cluster.model import DrainPolicy
from executors.driver import HostError
from executors.runtimes.base import DEFAULT_DRAIN, ImageInputs, NodeOps, Runtime, guarded

KUBEADM_CONFIG = "/etc/kubernetes/kubeadm.yaml"
JOIN_CONFIG = "/etc/kubernetes/kubeadm-join.yaml"
# What the bootstrap master prints, checked to the letter: its values go into files read on
# other hosts, so a master that was taken over cannot smuggle anything into them.
JOIN = re.compile(
    r"kubeadm join ([A-Za-z0-9.:\[\]-]+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) "
    r"--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})"
)
CERTIFICATE_KEY = re.compile(r"^[0-9a-f]{64}\Z")
ETCDCTL_TLS = (
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/server.crt",
    "--key=/etc/kubernetes/pki/etcd/server.key",
)
JOINED = "test -f /etc/kubernetes/kubelet.conf"


def etcdctl(ip: str, *args: str) -> str:
    """The command line of etcdctl against the stacked etcd member of master `ip`."""
    return "ETCDCTL_API=3 " + shlex.join(
        ["etcdctl", f"--endpoints=https://{ip}:2379", *ETCDCTL_TLS, *args]
    )


COPY_ADMIN = "install -d -m 0700 $HOME/.kube && cp -f /etc/kubernetes/admin.conf $HOME/.kube/config"


class Kubeadm(Runtime):
    name = "kubernetes"

    def __init__(self, drain: DrainPolicy = DEFAULT_DRAIN, image: ImageInputs | None = None):
        # The image's kubeadm documents with the Clusterfile's merged over them, by kind.
        self.documents: dict[str, dict] = {}
        super().__init__(drain, image)

    def configure(self, image: ImageInputs) -> None:
        user = [d.body for d in image.documents]
        defaults = kubeadm.image_defaults(image.rootfs)
        merged = kubeadm.merged_documents(defaults, user, image.version)
        if image.image_repository:
            kubeadm.default_image_repository(merged, image.image_repository, image.version)
        self.documents = kubeadm.with_sans(merged, list(image.sans)) if image.sans else merged

    def reconfigure_master(self, ops: NodeOps, ip: str) -> None:
        """The changed configuration on one master, as kubeadm's phases make it: the
        apiserver certificate (names) and static pod (extraArgs); the cluster's copy of
        ClusterConfiguration from the bootstrap master, for masters that join later."""
        config = kubeadm.init_config(
            self.documents, version=ops.version, node_ip=ops.address(ip), masters=ops.masters
        )
        steps = [
            f"cat > {KUBEADM_CONFIG}",
            "rm -f /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/pki/apiserver.key",
            f"kubeadm init phase certs apiserver --config={KUBEADM_CONFIG}",
            f"kubeadm init phase control-plane apiserver --config={KUBEADM_CONFIG}",
        ]
        if ip == ops.bootstrap:
            steps.append(f"kubeadm init phase upload-config kubeadm --config={KUBEADM_CONFIG}")
        ops.run(ip, " && ".join(steps), stdin=config.encode())
        self.wait_ready(ops, ip)

    @property
    def endpoint(self) -> tuple[str, int]:
        return kubeadm.endpoint_of(self.documents)

    version_command = "kubelet --version"
    admin_kubeconfig_command = "cat /etc/kubernetes/admin.conf"
    service_units = ("kubelet",)
    cert_file = "/etc/kubernetes/pki/apiserver.crt"

    def _etcdctl(self, ops: NodeOps, *command: str):
        """etcdctl against the bootstrap master's own member."""
        return ops.run(ops.bootstrap, etcdctl(ops.address(ops.bootstrap), *command))

    def _members(self, ops: NodeOps) -> list[dict]:
        return json.loads(self._etcdctl(ops, "member", "list", "-w", "json").stdout)["members"]

    def etcd_members(self, ops: NodeOps) -> set[str]:
        """The stacked etcd's members, asked of the bootstrap master's own member."""
        return {m.get("name", "") for m in self._members(ops)}

    def forget_member(self, ops: NodeOps, ip: str) -> None:
        """etcdctl member remove, the member found by its peer address."""
        for member in self._members(ops):
            peers = {urlsplit(url).hostname for url in member.get("peerURLs", [])}
            member_id = member.get("ID")
            if ops.address(ip) in peers and isinstance(member_id, int) and member_id >= 0:
                self._remove_member(ops, format(member_id, "x"))

    def _remove_member(self, ops: NodeOps, member_hex: str, patience: float = 30.0) -> None:
        """etcd refuses a membership change as "unhealthy cluster" until the members that stay
        have been connected for a few seconds (its strict reconfiguration check); kubeadm
        retries its member removal the same way."""
        deadline = time.monotonic() + patience
        while True:
            try:
                self._etcdctl(ops, "member", "remove", member_hex)
                return
            except HostError as e:
                if "unhealthy cluster" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def _joined(self, ops: NodeOps, ip: str) -> bool:
        """Joined and still a node. A host joined before whose node was deleted is reset first,
        as kubeadm's preflight refuses to join over an old kubelet.conf."""
        on_host = ops.run(ip, "test -f /etc/kubernetes/kubelet.conf", check=False).exit_code == 0
        if on_host and not self.is_node(ops, ip):
            ops.run(ip, "kubeadm reset -f")
            return False
        return on_host

    def install_first_master(self, ops: NodeOps, ip: str) -> None:
        config = kubeadm.init_config(
            self.documents, version=ops.version, node_ip=ops.address(ip), masters=ops.masters
        )
        # Skipped when an earlier, interrupted run initialised this host already.
        guarded(
            ops,
            ip,
            "test -f /etc/kubernetes/admin.conf",
            f"install -d /etc/kubernetes && cat > {KUBEADM_CONFIG} && "
            f"kubeadm init --config={KUBEADM_CONFIG} --upload-certs",
            stdin=config.encode(),
        )
        ops.run(ip, COPY_ADMIN)

    def _join_secrets(self, ops: NodeOps) -> tuple[str, str]:
        """A bootstrap token and the CA hash, from the bootstrap master (once per apply)."""
        out = self.secret(
            "join",
            lambda: ops.run(ops.bootstrap, "kubeadm token create --print-join-command").stdout,
        )
        m = JOIN.search(out)
        if not m:
            raise SealerError(f"{ops.bootstrap}: `kubeadm token create` printed no join command")
        return m[2], m[3]

    def _join(self, ops: NodeOps, ip: str, certificate_key: str = "") -> None:
        """`kubeadm join --config`: the JoinConfiguration (token inside) goes through stdin
        into a 0600 file that is removed once the node joined."""
        token, ca_hash = self._join_secrets(ops)
        config = kubeadm.join_config(
            self.documents,
            version=ops.version,
            node_ip=ops.address(ip),
            token=token,
            ca_hash=ca_hash,
            certificate_key=certificate_key,
        )
        guarded(
            ops,
            ip,
            JOINED,
            f"install -d /etc/kubernetes && (umask 077 && cat > {JOIN_CONFIG}) && "
            f"kubeadm join --config={JOIN_CONFIG} && rm -f {JOIN_CONFIG}",
            stdin=config.encode(),
            secrets=tuple(s for s in (token, certificate_key) if s),
        )

    def install_master(self, ops: NodeOps, ip: str) -> None:
        if not self._joined(ops, ip):
            # The certificate key expires after 2 h: upload the certificates again each apply.
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
            self._join(ops, ip, certificate_key=key)
            ops.run(ip, COPY_ADMIN)

    def install_worker(self, ops: NodeOps, ip: str) -> None:
        if not self._joined(ops, ip):
            self._join(ops, ip)

    def _leave(self, ops: NodeOps, ip: str) -> None:
        self.drain(ops, ip)
        ops.run(ip, "command -v kubeadm >/dev/null || exit 0; kubeadm reset -f")
        self.delete_node(ops, ip)

    delete_master = _leave  # `kubeadm reset` on a control-plane node removes its etcd member
    delete_worker = _leave

    def restart_upgraded(self, ops: NodeOps, ip: str, master: bool) -> None:
        """`kubeadm upgrade apply` on the bootstrap master (the cluster's upgrade), `kubeadm
        upgrade node` on the others; then the kubelet on its new binary."""
        if master and ip == ops.bootstrap:
            ops.run(ip, shlex.join(["kubeadm", "upgrade", "apply", ops.version, "-y"]))
        else:
            ops.run(ip, "kubeadm upgrade node")
        ops.run(ip, "systemctl restart kubelet")

    def reset(self, ops: NodeOps, ip: str, master: bool) -> None:
        ops.run(ip, "command -v kubeadm >/dev/null || exit 0; kubeadm reset -f")
