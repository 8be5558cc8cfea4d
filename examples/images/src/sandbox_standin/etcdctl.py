"""etcdctl: the real one, behind the TLS flags kubeadm's etcd would need."""

import os
import re

from .cmdline import Refused
from .common import LIB

ETCDCTL_BIN = os.path.join(LIB, "etcdctl")

# kubeadm's stacked etcd serves TLS; the sandbox etcd serves plain HTTP on the node's address
# (client certificates are not made yet), so this etcdctl takes kubeadm's TLS flags and runs
# the real etcdctl without them.
ETCDCTL_TLS = (
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/server.crt",
    "--key=/etc/kubernetes/pki/etcd/server.key",
)

ETCDCTL_COMMANDS = (["member", "list", "-w", "json"], ["endpoint", "health"])

RESTORE_FLAGS = (
    "--name",
    "--initial-cluster",
    "--initial-cluster-token",
    "--initial-advertise-peer-urls",
    "--data-dir",
)


def tool_etcdctl(version, argv):
    if len(argv) >= 3 and argv[:2] == ["snapshot", "restore"]:  # offline: no endpoint
        flags = [a.split("=", 1)[0] for a in argv[3:]]
        if sorted(flags) != sorted(RESTORE_FLAGS) or not all("=" in a for a in argv[3:]):
            raise Refused
        os.execv(ETCDCTL_BIN, [ETCDCTL_BIN, *argv])
    if len(argv) < 5 or not argv[0].startswith("--endpoints=https://"):
        raise Refused
    command = argv[4:]
    snapshot = len(command) == 3 and command[:2] == ["snapshot", "save"]
    removal = len(command) == 3 and command[:2] == ["member", "remove"]
    removal = removal and re.fullmatch(r"[0-9a-f]{1,16}", command[2]) is not None
    if tuple(argv[1:4]) != ETCDCTL_TLS or (
        command not in ETCDCTL_COMMANDS and not snapshot and not removal
    ):
        raise Refused
    endpoint = "http://" + argv[0].split("https://", 1)[1]
    os.execv(ETCDCTL_BIN, [ETCDCTL_BIN, f"--endpoints={endpoint}", *command])
