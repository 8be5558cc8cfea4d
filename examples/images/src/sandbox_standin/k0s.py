"""SANDBOX STAND-IN k0s: controller and worker, install, token, reset and kubectl."""

import json
import os
import re
import subprocess

from .api_client import admin_kubeconfig, api, join_cluster, server_of
from .apiserver import PORT, ControlPlane, init_cluster_data, wait_for_api
from .cmdline import Refused
from .common import fail, ip_address, load_yaml, read_file, write_file
from .etcd import ETCD_CLIENT_PORT, Etcd, etcd_url, has_data, start_embedded_etcd
from .k3s import serve_in_background
from .kubectl import tool_kubectl
from .kubelet import register_kubelet
from .services import rest, service_pid, stay, stop_with
from .systemctl import UNIT_DIR, WANTS_DIR, enable_unit, tool_systemctl

K0S_DATA = "/var/lib/k0s"

K0S_CONFIG = "/etc/k0s/k0s.yaml"


def k0s_token_file(path):
    import base64

    text = (read_file(path) or fail(f"token file {path} not found")).strip()
    try:
        return json.loads(base64.b64decode(text)), text
    except ValueError:
        fail("the join token is not valid")


def k0s_api_config():
    """spec.api of /etc/k0s/k0s.yaml: this controller's address and the external endpoint."""
    config = load_yaml(K0S_CONFIG, "k0s configuration")
    spec_api = (config.get("spec") or {}).get("api") or {}
    address = spec_api.get("address") or fail(
        "SANDBOX STAND-IN k0s: spec.api.address is not set in /etc/k0s/k0s.yaml (the stand-in "
        "does not guess it from the default route)"
    )
    port = int(spec_api.get("port") or PORT)
    external = spec_api.get("externalAddress") or address
    return ip_address(address, "spec.api.address"), f"{external}:{port}"


def k0s_own_server():
    address, _ = k0s_api_config()
    return f"{address}:{PORT}"


def k0s_worker_node_ip(argv):
    extra = next((a.split("=", 1)[1] for a in argv if a.startswith("--kubelet-extra-args=")), "")
    m = re.search(r"--node-ip=(\S+)", extra)
    if not m:
        fail("SANDBOX STAND-IN k0s worker: no --node-ip in --kubelet-extra-args")
    return ip_address(m[1], "--node-ip")


def tool_k0s(version, argv):
    k0s_version = f"{version}+k0s.0"
    a = argv
    if a == ["version"]:
        print(k0s_version)
        return
    if a and a[0] == "kubectl":
        return tool_kubectl(version, a[1:], server=k0s_own_server())
    if a == ["kubeconfig", "admin"]:
        print(admin_kubeconfig(k0s_own_server()), end="")
        return
    if len(a) in (4, 6) and a[:2] == ["install", "controller"] and a[-2:] == ["-c", K0S_CONFIG]:
        token = a[3] if len(a) == 6 and a[2] == "--token-file" else None
        if len(a) == 6 and token is None:
            raise Refused
        extra = f" --token-file {token}" if token else ""
        write_file(
            f"{UNIT_DIR}/k0scontroller.service",
            f"[Service]\nExecStart=/usr/local/bin/k0s controller -c {K0S_CONFIG}{extra}\n"
            "[Install]\nWantedBy=multi-user.target\n",
        )
        enable_unit("k0scontroller")  # k0s install enables the service it writes
        return
    if len(a) == 5 and a[:3] == ["install", "worker", "--token-file"]:
        k0s_worker_node_ip(a[4:])
        write_file(
            f"{UNIT_DIR}/k0sworker.service",
            f"[Service]\nExecStart=/usr/local/bin/k0s worker --token-file {a[3]} {a[4]}\n"
            "[Install]\nWantedBy=multi-user.target\n",
        )
        enable_unit("k0sworker")
        return
    if a in (["start"], ["stop"]):
        units = [
            u for u in ("k0scontroller", "k0sworker") if os.path.exists(f"{UNIT_DIR}/{u}.service")
        ]
        if not units:
            fail("k0s has not been installed as a service; run k0s install first")
        for unit in units:
            tool_systemctl(None, [a[0], unit])
        if a == ["start"] and "k0scontroller" in units:
            wait_for_api(k0s_own_server())
        return
    if a == ["reset"]:
        if service_pid("k0scontroller") or service_pid("k0sworker"):
            fail("k0s is still running; run k0s stop first")
        subprocess.run(
            [
                "rm",
                "-rf",
                K0S_DATA,
                f"{UNIT_DIR}/k0scontroller.service",
                f"{UNIT_DIR}/k0sworker.service",
                f"{WANTS_DIR}/k0scontroller.service",
                f"{WANTS_DIR}/k0sworker.service",
                "/etc/k0s/join-token",
            ],
            check=True,
        )
        print("k0s reset: SANDBOX STAND-IN node data removed")
        return
    if (
        len(a) == 3
        and a[:2] == ["token", "create"]
        and a[2] in ("--role=worker", "--role=controller")
    ):
        info = api(k0s_own_server(), "POST", "/tokens", {"role": a[2].split("=")[1]})
        print(info["token"])
        return
    if len(a) == 4 and a[:3] == ["etcd", "leave", "--peer-address"]:
        address, _ = k0s_api_config()
        client = etcd_url(address, ETCD_CLIENT_PORT)
        peer = ip_address(a[3], "--peer-address")
        ControlPlane(address, Etcd([client])).remove_member({"peer": peer})
        return
    if a == ["etcd", "member-list"]:
        address, _ = k0s_api_config()
        members = Etcd([etcd_url(address, ETCD_CLIENT_PORT)]).members()
        print(
            json.dumps({"members": {m["name"]: m["peerURLs"][0] for m in members if m.get("name")}})
        )
        return
    if a[:3] == ["controller", "-c", K0S_CONFIG] and len(a) in (3, 5):
        return k0s_controller(version, a[4] if len(a) == 5 else None)
    if len(a) == 4 and a[:2] == ["worker", "--token-file"]:
        address = k0s_worker_node_ip(a[3:])
        claims, token = k0s_token_file(a[2])
        server = server_of(claims["server"])
        if not os.path.exists(f"{K0S_DATA}/joined"):
            join_cluster(server, token, "worker", address)
            write_file(f"{K0S_DATA}/joined", "yes\n")
        register_kubelet(version, server, [], address)
        rest("k0s worker")
    raise Refused


def k0s_controller(version, token_file):
    address, endpoint = k0s_api_config()
    data_dir = f"{K0S_DATA}/etcd"
    initial = None
    first = token_file is None and not has_data(data_dir)
    if token_file and not has_data(data_dir):
        claims, token = k0s_token_file(token_file)
        joined = join_cluster(server_of(claims["server"]), token, "control-plane", address)
        initial = joined["initial_cluster"]
    etcd = start_embedded_etcd(address, data_dir, initial)
    stop_with([etcd])
    if first:
        init_cluster_data(address, "k0s", endpoint)
    own = f"{address}:{PORT}"
    write_file(f"{K0S_DATA}/pki/admin.conf", admin_kubeconfig(own), 0o600)
    write_file(f"{K0S_DATA}/version", version + "\n")
    serve_in_background(address, [etcd_url(address, ETCD_CLIENT_PORT)])
    stay()
