"""SANDBOX STAND-IN kubelet: keeps the static pods running, registers its node, and pulls the
images of the pods placed on it through containerd (kubelet_pods), reporting their status."""

import contextlib
import json
import os
import re
import signal
import sys
import time

from . import containerd
from .api_client import api, call_api, kubeconfig_server
from .apiserver import wait_for_api
from .backoff import Unreachable, with_backoff
from .cmdline import Refused
from .common import RUN_DIR, fail, ip_address, node_name, read_file, write_file
from .kubelet_pods import ImagePuller, pod_status
from .services import service_pid, spawn, stop_service

KUBE_DIR = "/etc/kubernetes"

MANIFESTS = f"{KUBE_DIR}/manifests"  # the static pods: etcd and kube-apiserver
SYNC_INTERVAL = 2.0  # seconds between two looks at the pods placed on this node

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
        puller = ImagePuller()
        threading.Thread(target=keep_static_pods, args=(puller,), daemon=True).start()
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
        sync_pods(server, puller)
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


def keep_static_pods(puller, interval=0.3):
    """What the kubelet does with /etc/kubernetes/manifests: start a pod that is not running
    or whose manifest changed (once containerd has its images), stop a pod whose manifest was
    taken away."""
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
                    image = json.loads(manifest).get("image")
                    have = containerd.images() if image else {}
                    if not image or puller.ensure(image, have)[0]:
                        run_static_pod(name, manifest)
            for f in os.listdir(RUN_DIR):
                name = f[: -len(".manifest")]
                if f.endswith(".manifest") and name not in present:
                    stop_service(name)
                    os.unlink(os.path.join(RUN_DIR, f))
        time.sleep(interval)


def static_pod(name, command, version="", image=""):
    """Write a static pod's manifest and start it (kubeadm waits for it, having pulled its
    image; the kubelet keeps it running afterwards)."""
    manifest = {"name": name, "version": version, "image": image, "command": command}
    manifest = json.dumps(manifest) + "\n"
    with static_pods_lock():
        write_file(f"{MANIFESTS}/{name}.yaml", manifest)
        run_static_pod(name, manifest)


def static_pod_command(name):
    text = read_file(f"{MANIFESTS}/{name}.yaml")
    return json.loads(text)["command"] if text else None


def static_pod_image(name):
    text = read_file(f"{MANIFESTS}/{name}.yaml")
    return (json.loads(text).get("image") or "") if text else ""


def sync_pods(server, puller):
    """Every SYNC_INTERVAL: the pods the API server placed on this node and the static pods,
    their images made present, their statuses sent when they changed (a pod that runs with
    the same containers is not looked at again)."""
    me, sent, known = node_name(), None, {}
    while True:
        try:
            placed = call_api(server, "GET", f"/pods/{me}")
        except (Unreachable, SystemExit):
            time.sleep(SYNC_INTERVAL)
            continue
        wanted = {
            ("pods", f"{p['namespace']}/{p['name']}"): (p["containers"], True) for p in placed
        }
        for f in sorted(os.listdir(MANIFESTS)) if os.path.isdir(MANIFESTS) else ():
            name = f[: -len(".yaml")]
            image = static_pod_image(name) if f.endswith(".yaml") else ""
            if image:  # shown as a mirror pod, NAME-NODE in kube-system, as the kubelet does
                running = service_pid(name) is not None
                key = ("static", f"kube-system/{name}-{me}")
                wanted[key] = ([{"name": name, "image": image}], running)
        have = None
        report = {"pods": {}, "static": {}}
        for (group, key), (containers, running) in wanted.items():
            old = known.get((group, key))
            if old and old[0] == (containers, running) and old[1]["phase"] == "Running":
                report[group][key] = old[1]
                continue
            if have is None:
                have = containerd.images()
            status = pod_status(containers, puller, have, running)
            report[group][key] = status
            known[(group, key)] = ((containers, running), status)
        known = {k: v for k, v in known.items() if k in wanted}
        if report != sent:
            try:
                call_api(server, "POST", f"/pods/{me}/status", report)
                sent = report
            except (Unreachable, SystemExit):
                pass
        time.sleep(SYNC_INTERVAL)
