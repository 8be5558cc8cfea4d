"""Command-line matching: what a stand-in refuses, and the log of every command it ran."""

import json
import os
import re
import time

from .common import LOG_DIR

# Tools whose runs only read, for tests that check "no command that changes anything ran".
READ_ONLY = re.compile(
    r"^(kubectl (get|version)|k3s (--version|kubectl get)|k0s (version|kubectl get|etcd member-list"
    r"|kubeconfig)|kubeadm version|kubelet --version|systemctl is-active|crictl ps"
    r"|etcdctl --endpoints=\S+ \S+ \S+ \S+ (member list|endpoint health|snapshot save))"
)


class Refused(Exception):
    """An unknown command line: the real tool would not accept it either."""


def log_command(tool, argv):
    os.makedirs(LOG_DIR, exist_ok=True)
    line = " ".join([tool, *argv])
    record = {"time": time.time(), "argv": [tool, *argv], "read_only": bool(READ_ONLY.match(line))}
    with open(os.path.join(LOG_DIR, "commands.log"), "a") as f:
        f.write(json.dumps(record) + "\n")
