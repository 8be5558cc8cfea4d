"""SANDBOX STAND-IN kubelet: keeps the static pods running and registers its node."""

import contextlib
import json
import os
import re
import signal
import sys
import time

from .api_client import api, kubeconfig_server
from .apiserver import wait_for_api
from .backoff import with_backoff
from .cmdline import Refused
from .common import RUN_DIR, fail, ip_address, node_name, read_file, write_file
from .services import service_pid, spawn, stay, stop_service

KUBE_DIR = "/etc/kubernetes"

MANIFESTS = f"{KUBE_DIR}/manifests"  # the static pods: etcd and kube-apiserver

KUBEADM_FLAGS = "/var/lib/kubelet/kubeadm-flags.env"


def kubelet_node_ip():
    text = read_file(KUBEADM_FLAGS, "")
    m = re.search(r"--node-ip=([0-9a-fA-F.:]+)", text)
    if not m:
        fail(
            "SANDBOX STAND-IN kubelet: no --node-ip in kubeadm-flags.env (the stand-in does not "
            "guess the node's address from the default route)"
        )
    return ip_address(m[1], "--node-ip")


def register_kubelet(version, server, roles, address, labels=None):
    """As the kubelet does, with its --node-labels, tried again until the API server takes it:
    a busy control plane (hundreds of nodes joining) may answer with a conflict or not in
    time."""
    node = {"name": node_name(), "address": address, "version": version, "roles": roles}
    node["labels"] = labels or {}
    with_backoff(lambda: api(server, "POST", "/nodes", node, timeout=30), retry_on=SystemExit)


def tool_kubelet(version, argv):
    if argv == ["--version"]:
        print(f"Kubernetes {version}")
        return
    if argv == [
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
    ]:  # the service: keep the static pods running, register through kubelet.conf's endpoint
        import threading

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        threading.Thread(target=keep_static_pods, daemon=True).start()
        config = json.loads(read_file("/var/lib/kubelet/config.yaml", "{}"))
        server = kubeconfig_server(f"{KUBE_DIR}/kubelet.conf")
        address = kubelet_node_ip()
        while True:  # the kubelet retries until the API server answers
            try:
                wait_for_api(server)
                break
            except SystemExit:
                time.sleep(1)
        register_kubelet(version, server, config.get("roles", []), address)
        stay()
    raise Refused


@contextlib.contextmanager
def static_pods_lock():
    """kubeadm and the kubelet both start static pods: one at a time."""
    import fcntl

    os.makedirs(RUN_DIR, exist_ok=True)
    with open(os.path.join(RUN_DIR, ".static-pods.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_static_pod(name, manifest):
    """(Re)start a static pod from its manifest text; remember which manifest it runs."""
    stop_service(name)
    spawn(name, json.loads(manifest)["command"])
    write_file(os.path.join(RUN_DIR, f"{name}.manifest"), manifest)


def keep_static_pods(interval=0.3):
    """What the kubelet does with /etc/kubernetes/manifests: start a pod that is not running
    or whose manifest changed, stop a pod whose manifest was taken away."""
    while True:
        with static_pods_lock():
            present = {
                f[: -len(".yaml")]: read_file(os.path.join(MANIFESTS, f))
                for f in (os.listdir(MANIFESTS) if os.path.isdir(MANIFESTS) else [])
                if f.endswith(".yaml")
            }
            for name, manifest in present.items():
                ran = read_file(os.path.join(RUN_DIR, f"{name}.manifest"))
                if manifest and (service_pid(name) is None or ran != manifest):
                    run_static_pod(name, manifest)
            for f in os.listdir(RUN_DIR):
                name = f[: -len(".manifest")]
                if f.endswith(".manifest") and name not in present:
                    stop_service(name)
                    os.unlink(os.path.join(RUN_DIR, f))
        time.sleep(interval)


def static_pod(name, command, version=""):
    """Write a static pod's manifest and start it (kubeadm waits for it; the kubelet keeps
    it running afterwards)."""
    manifest = json.dumps({"name": name, "version": version, "command": command}) + "\n"
    with static_pods_lock():
        write_file(f"{MANIFESTS}/{name}.yaml", manifest)
        run_static_pod(name, manifest)


def static_pod_command(name):
    text = read_file(f"{MANIFESTS}/{name}.yaml")
    return json.loads(text)["command"] if text else None
