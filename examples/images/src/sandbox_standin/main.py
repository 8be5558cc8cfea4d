"""The entry point: each tool's wrapper in bin/ calls main() with TOOL VERSION ARGS..."""

import importlib
import os
import shlex
import sys

from .cmdline import Refused, log_command

# tool -> (module, function). Only the tool's own module is imported: a stand-in starts on
# hosts that share two cores, and systemctl or `kubelet --version` need none of the others.
TOOLS = {
    "kubeadm": ("kubeadm", "tool_kubeadm"),
    "kubelet": ("kubelet", "tool_kubelet"),
    "kubectl": ("kubectl", "tool_kubectl"),
    "k3s": ("k3s", "tool_k3s"),
    "k0s": ("k0s", "tool_k0s"),
    "systemctl": ("systemctl", "tool_systemctl"),
    "kube-apiserver": ("apiserver", "tool_kube_apiserver"),
    "etcdctl": ("etcdctl", "tool_etcdctl"),
    "crictl": ("crictl", "tool_crictl"),
    "helm": ("helm", "tool_helm"),
}


def main():
    tool, version, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if tool != "kube-apiserver" and not os.environ.get("SANDBOX_SERVICE"):
        log_command(tool, argv)
    module, function = TOOLS[tool]
    run = getattr(importlib.import_module(f".{module}", __package__), function)
    try:
        run(version, argv)
    except Refused:
        print(
            f"{tool}: unknown command line (SANDBOX STAND-IN accepts only the command lines "
            f"sealer's runtimes use): {shlex.join(argv)}",
            file=sys.stderr,
        )
        sys.exit(2)
