"""The client side of the control-plane stand-in's HTTP API, and the kubeconfigs that name it."""

import json
import os
import re

from .backoff import Unreachable, with_backoff
from .common import fail, node_name, read_file


def api(server, method, path, body=None, timeout=10):
    """One call to a control-plane stand-in; `server` is host:port, a name or an address."""
    try:
        return call_api(server, method, path, body, timeout)
    except Unreachable as e:
        fail(str(e))


def call_api(server, method, path, body=None, timeout=10):
    """api(), but an API server that does not answer, or answers that it is busy, raises
    Unreachable."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://{server}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("error", str(e))
        except ValueError:
            message = str(e)
        if e.code in (429, 503):  # busy (etcd electing a leader): the callers that retry do
            raise Unreachable(message) from None
        fail(message)
    except OSError as e:
        raise Unreachable(f"the connection to the server {server} was refused: {e}") from None


def server_of(url):
    """host:port of an https:// URL as the tools take them."""
    return re.sub(r"^https?://", "", str(url)).rstrip("/")


def join_cluster(server, token, role, address, **extra):
    """Ask the control plane to admit this node (as a worker or a control-plane member). An API
    server that does not answer is asked again for up to 5 minutes, as kubeadm's discovery and
    k3s's agent do (a busy one resets connections); a refusal is final."""
    body = {"token": token, "role": role, "name": node_name(), "address": address, **extra}
    try:
        return with_backoff(lambda: call_api(server, "POST", "/join", body, timeout=30), 300)
    except Unreachable as e:
        fail(str(e))


def kubeconfig_server(path):
    config = json.loads(read_file(path, "{}") or "{}")
    return server_of(config.get("server", ""))


def admin_server():
    """The API server an admin client talks to: KUBECONFIG, ~/.kube/config, then the tools'."""
    candidates = [
        os.environ.get("KUBECONFIG", ""),
        os.path.expanduser("~/.kube/config"),
        "/etc/kubernetes/admin.conf",
        "/etc/rancher/k3s/k3s.yaml",
        "/var/lib/k0s/pki/admin.conf",
    ]
    for path in candidates:
        if path and os.path.exists(path):
            server = kubeconfig_server(path)
            if server:
                return server
    fail(
        "The connection to the server localhost:8080 was refused - did you specify the right "
        "host or port?"
    )


def admin_kubeconfig(server):
    return (
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "server": f"https://{server}",
                "user": "admin",
                "note": "SANDBOX STAND-IN kubeconfig",
            },
            indent=1,
        )
        + "\n"
    )
