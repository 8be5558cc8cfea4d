"""SANDBOX STAND-IN k3s: server and agent, with k3s's config file and token."""

import os

from .api_client import admin_kubeconfig, join_cluster, server_of
from .apiserver import PORT, init_cluster_data, make_api_server, wait_for_api
from .cmdline import Refused
from .common import fail, ip_address, load_yaml, write_file
from .etcd import ETCD_CLIENT_PORT, etcd_url, has_data, start_embedded_etcd
from .kubectl import tool_kubectl
from .kubelet import register_kubelet
from .services import rest, stay, stop_with

K3S_CONFIG = "/etc/rancher/k3s/config.yaml"

K3S_TOKEN = "/var/lib/rancher/k3s/server/token"

K3S_ETCD_DATA = "/var/lib/rancher/k3s/server/db/etcd"


def serve_in_background(address, etcd_endpoints):
    import threading

    httpd = make_api_server(address, etcd_endpoints)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    wait_for_api(f"{address}:{PORT}")


def tool_k3s(version, argv):
    k3s_version = f"{version}+k3s1"
    if argv == ["--version"]:
        print(f"k3s version {k3s_version} (SANDBOX STAND-IN)")
        return
    if argv and argv[0] == "kubectl":
        return tool_kubectl(version, argv[1:])
    if argv not in (["server"], ["agent"]):
        raise Refused
    config = load_yaml(K3S_CONFIG, "k3s configuration")
    token = str(config.get("token") or fail("--token is required"))
    address = ip_address(
        config.get("node-ip") or fail("SANDBOX STAND-IN k3s: no node-ip in the config"), "node-ip"
    )
    labels = dict(str(x).split("=", 1) for x in config.get("node-label") or [] if "=" in str(x))
    if argv == ["server"]:
        return k3s_server(version, config, token, address, labels)
    server = server_of(config.get("server") or fail("--server is required"))
    if not os.path.exists("/var/lib/rancher/k3s/agent/joined"):
        join_cluster(server, token, "worker", address)
        write_file("/var/lib/rancher/k3s/agent/joined", "yes\n")
    register_kubelet(version, server, [], address, labels)
    rest("k3s agent")


def k3s_server(version, config, token, address, labels):
    own = f"{address}:{PORT}"
    initial = None
    if config.get("cluster-init") is not True and not has_data(K3S_ETCD_DATA):
        server = server_of(config.get("server") or fail("--server is required"))
        initial = join_cluster(server, token, "control-plane", address)["initial_cluster"]
    first = config.get("cluster-init") is True and not has_data(K3S_ETCD_DATA)
    etcd = start_embedded_etcd(address, K3S_ETCD_DATA, initial)
    stop_with([etcd])
    client = etcd_url(address, ETCD_CLIENT_PORT)
    if first:
        init_cluster_data(address, "k3s", own, secret=token)
    write_file(K3S_TOKEN, token + "\n", 0o600)
    write_file("/etc/rancher/k3s/k3s.yaml", admin_kubeconfig(own), 0o600)
    serve_in_background(address, [client])
    register_kubelet(version, own, ["control-plane", "etcd", "master"], address, labels)
    stay()
