#!/usr/bin/python3
"""SANDBOX STAND-IN for kubeadm, kubelet, kubectl, k3s, k0s and systemctl. NOT the real tools.

No Kubernetes binary can be downloaded on the machines sealer is tested on, so the sandbox
ClusterImages carry this one file instead. It accepts exactly the command lines that sealer's
runtimes use (the real tools' syntax) and refuses anything else with exit code 2. A small
control-plane stand-in (an HTTP server on <node address>:6443) keeps the cluster's nodes, etcd
members, join tokens and a history of membership and cordons, so that tests can check quorum
and batch limits. Every invocation is logged to /var/log/sandbox-standin/commands.log.

Invoked by wrappers as: sandbox-standin.py TOOL VERSION ARGS...  (standard library only)
"""

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

# The HTTP, threading and crypto modules are imported where they are used: most invocations
# (systemctl, --version, ...) need none of them, and every stand-in start costs CPU on hosts
# that share two cores.

HERE = os.path.dirname(os.path.realpath(__file__))
LOG_DIR = "/var/log/sandbox-standin"
UNIT_DIR = "/etc/systemd/system"
RUN_DIR = "/run/sandbox-systemd"
API_DIR = "/var/lib/sandbox-apiserver"
PORT = 6443
# Tools whose runs only read, for tests that check "no command that changes anything ran".
READ_ONLY = re.compile(
    r"^(kubectl (get|version)|k3s (--version|kubectl get)|k0s (version|kubectl get|etcd member-list"
    r"|kubeconfig)|kubeadm version|kubelet --version|systemctl is-active|etcdctl)"
)


class Refused(Exception):
    """An unknown command line: the real tool would not accept it either."""


def fail(message, code=1):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def log_command(tool, argv):
    os.makedirs(LOG_DIR, exist_ok=True)
    line = " ".join([tool, *argv])
    record = {"time": time.time(), "argv": [tool, *argv], "read_only": bool(READ_ONLY.match(line))}
    with open(os.path.join(LOG_DIR, "commands.log"), "a") as f:
        f.write(json.dumps(record) + "\n")


def node_address():
    with open("/etc/sandbox-host/address") as f:
        return f.read().strip()


def node_name():
    return os.uname().nodename


def read_file(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def simple_yaml(text):
    """The `key: value` and `key: [a, b]` subset our config files use."""
    out = {}
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].rstrip()
        if not line or line.startswith(" ") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            out[key.strip()] = [v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip()]
        else:
            out[key.strip()] = value.strip("\"'")
    return out


# ---------------------------------------------------------------- API client


def api(server, method, path, body=None, timeout=10):
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
        fail(message)
    except OSError as e:
        fail(f"the connection to the server {server} was refused: {e}")


def join_cluster(server, token, role, **extra):
    """Ask the control plane to admit this node (as a worker or a control-plane member)."""
    body = {"token": token, "role": role, "name": node_name(), "address": node_address(), **extra}
    api(server, "POST", "/join", body)


def kubeconfig_server(path):
    config = json.loads(read_file(path, "{}") or "{}")
    return config.get("server", "").replace("https://", "")


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


# ---------------------------------------------------------------- control-plane stand-in


class ApiState:
    """The cluster as the control plane knows it. Lives on the leader; followers forward."""

    def __init__(self, folder, address, leader, distribution, secret):
        import hashlib
        import secrets
        import threading

        self.folder = folder
        self.path = os.path.join(folder, "state.json")
        self.address = address
        self.lock = threading.Lock()
        saved = read_file(self.path)
        self.data = json.loads(saved) if saved else None
        if self.data is None and leader is None:
            self.data = {
                "distribution": distribution,
                "secret": secret or secrets.token_hex(16),
                "ca_hash": "sha256:" + hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                "tokens": [],
                "certificate_key": secrets.token_hex(32),
                "nodes": {},
                "etcd": {},
                "history": [],
            }
            self.data["etcd"][node_name()] = node_address()  # the first member: this node
            self.event("etcd_member_added", node=node_name())
            self.save()
        self.leader = leader  # "ip:port" of the leader, None when this server leads

    def save(self):
        write_file(self.path, json.dumps(self.data), 0o600)

    def event(self, kind, **detail):
        d = self.data
        cordoned = sorted(n for n, v in d["nodes"].items() if v["unschedulable"])
        d["history"].append(
            {
                "seq": len(d["history"]) + 1,
                "time": time.time(),
                "event": kind,
                **detail,
                "etcd_members": sorted(d["etcd"]),
                "cordoned": cordoned,
            }
        )


def handle(state, method, path, body):
    """One API call on the leader. Returns (status, json)."""
    import base64
    import secrets

    d = state.data
    parts = [p for p in path.split("/") if p]
    if method == "GET" and parts == ["nodes"]:
        return 200, d["nodes"]
    if method == "GET" and parts == ["etcd"]:
        return 200, d["etcd"]
    if method == "GET" and parts == ["history"]:
        return 200, d["history"]
    if method == "GET" and parts == ["objects"]:
        return 200, d.get("objects", {})
    if method == "POST" and parts == ["objects"]:  # kubectl apply: kind/namespace/name -> object
        objects, results = d.setdefault("objects", {}), []
        for obj in body["objects"]:
            key = f"{obj['kind']}/{obj['namespace']}/{obj['name']}"
            old = objects.get(key)
            objects[key] = obj
            results.append(
                "created" if old is None else "unchanged" if old == obj else "configured"
            )
        return 200, {"results": results}
    if method == "GET" and parts == ["info"]:
        return 200, {"distribution": d["distribution"], "leader": state.address}
    if method == "POST" and parts == ["tokens"]:
        token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
        if body.get("role"):
            token = base64.b64encode(
                json.dumps({"server": state.address, "role": body["role"], "token": token}).encode()
            ).decode()
        d["tokens"].append(token)
        return 200, {"token": token, "ca_hash": d["ca_hash"], "server": state.address}
    if method == "POST" and parts == ["certificate-key"]:
        d["certificate_key"] = secrets.token_hex(32)
        return 200, {"certificate_key": d["certificate_key"]}
    if method == "POST" and parts == ["join"]:
        return join(state, body)
    if method == "POST" and parts == ["nodes"]:
        name = body["name"]
        node = d["nodes"].get(name)
        if node is None:
            node = d["nodes"][name] = {
                "address": body["address"],
                "roles": body["roles"],
                "labels": {},
                "taints": [],
                "unschedulable": False,
            }
            state.event("node_registered", node=name)
        node.update(version=body["version"], ready=True, address=body["address"])
        node["roles"] = body["roles"]
        return 200, node
    if len(parts) == 2 and parts[0] == "nodes":
        return node_call(state, method, parts[1], body)
    if len(parts) == 3 and parts[0] == "nodes" and method == "POST":
        return node_call(state, parts[2], parts[1], body)
    if method == "POST" and parts == ["etcd", "remove"]:
        removed = [
            n for n, a in d["etcd"].items() if n == body.get("name") or a == body.get("peer")
        ]
        for name in removed:
            del d["etcd"][name]
            state.event("etcd_member_removed", node=name)
        return 200, {"removed": removed}
    return 404, {"error": f"the server could not find the requested resource ({method} {path})"}


def join(state, body):
    d = state.data
    token = body.get("token")
    valid = token in d["tokens"] or (d["distribution"] == "k3s" and token == d["secret"])
    if not valid:
        return 403, {
            "error": "couldn't validate the identity of the API Server: the join token is not valid"
        }
    if d["distribution"] == "kubernetes":
        if body.get("ca_hash") != d["ca_hash"]:
            return 403, {
                "error": "cluster CA found in cluster-info ConfigMap is invalid: none of "
                "the public keys match the --discovery-token-ca-cert-hash"
            }
        if body["role"] == "control-plane" and body.get("certificate_key") != d["certificate_key"]:
            return 403, {
                "error": "error downloading the secret: the certificate key is invalid "
                "or expired; run kubeadm init phase upload-certs --upload-certs"
            }
    name = body["name"]
    existing = d["nodes"].get(name)
    if existing and existing.get("ready") and existing["address"] != body["address"]:
        return 409, {"error": f"a Node with name {name!r} and status Ready already exists"}
    if body["role"] == "control-plane":
        d["etcd"][name] = body["address"]
        state.event("etcd_member_added", node=name)
    state.event("joined", node=name, role=body["role"])
    return 200, {"ok": True}


def node_call(state, action, name, body):
    d = state.data
    node = d["nodes"].get(name)
    if node is None:
        return 404, {"error": f'nodes "{name}" not found'}
    if action == "GET":
        return 200, node
    if action == "DELETE":
        del d["nodes"][name]
        if d["distribution"] == "k3s" and name in d["etcd"]:  # k3s removes the member itself
            del d["etcd"][name]
            state.event("etcd_member_removed", node=name)
        state.event("node_deleted", node=name)
        return 200, {"deleted": name}
    if action in ("cordon", "drain"):
        node["unschedulable"] = True
        state.event(action, node=name)
    elif action == "uncordon":
        node["unschedulable"] = False
        state.event("uncordon", node=name)
    elif action == "labels":
        node["labels"].update({k: v for k, v in body.get("set", {}).items()})
        for key in body.get("remove", []):
            node["labels"].pop(key, None)
    elif action == "taints":
        keep = [
            t
            for t in node["taints"]
            if t.split("=")[0].split(":")[0]
            not in {
                x.split("=")[0].split(":")[0] for x in body.get("set", []) + body.get("remove", [])
            }
        ]
        node["taints"] = keep + body.get("set", [])
    elif action == "status":
        node["ready"] = bool(body.get("ready"))
    else:
        return 404, {"error": f"unknown node action {action}"}
    return 200, node


def make_api_server(distribution, leader=None, secret=None, folder=API_DIR):
    """The control-plane stand-in on this node's address (never 0.0.0.0)."""
    import http.server
    import socketserver
    import urllib.error
    import urllib.request

    state = ApiState(folder, f"{node_address()}:{PORT}", leader, distribution, secret)

    class ApiHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if state.leader:  # a follower: the leader holds the data
                request = urllib.request.Request(
                    f"http://{state.leader}{self.path}",
                    data=raw or None,
                    method=method,
                    headers={"Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as e:
                    status, payload = e.code, e.read()
                except OSError as e:
                    error = {"error": f"etcd leader unreachable: {e}"}
                    status, payload = 503, json.dumps(error).encode()
            else:
                body = json.loads(raw or b"{}")
                with state.lock:
                    status, result = handle(state, method, self.path, body)
                    if method != "GET":
                        state.save()
                payload = json.dumps(result).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_DELETE(self):
            self._serve("DELETE")

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    return Server((node_address(), PORT), ApiHandler)


def serve_api(distribution, leader=None, secret=None):
    httpd = make_api_server(distribution, leader, secret)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd.serve_forever()


def wait_for_api(server, timeout=15):
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{server}/info", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    fail(f"the API server at {server} did not come up")


# ---------------------------------------------------------------- a tiny service manager


def spawn(name, argv):
    """Start argv detached, as a service; its pid goes to RUN_DIR/<name>.pid."""
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, f"{name}.log"), "a") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "SANDBOX_SERVICE": name},
        )
    write_file(os.path.join(RUN_DIR, f"{name}.pid"), str(proc.pid))


def service_pid(name):
    try:
        pid = int(read_file(os.path.join(RUN_DIR, f"{name}.pid"), "") or 0)
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1][0] == "Z":
                return None
        return pid
    except (ValueError, OSError):
        return None


def stop_service(name):
    pid = service_pid(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if service_pid(name) is None:
                break
            time.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(RUN_DIR, f"{name}.pid"))


def unit_command(name):
    text = read_file(os.path.join(UNIT_DIR, f"{name}.service"))
    if text is None:
        fail(f"Unit {name}.service not found.", 5)
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line[len("ExecStart=") :])
    fail(f"Unit {name}.service has no ExecStart")


def start_unit(name):
    if service_pid(name) is None:
        spawn(name, unit_command(name))


def tool_systemctl(version, argv):
    if argv == ["daemon-reload"]:
        return
    if len(argv) >= 2 and argv[0] == "is-active":  # one line per unit, as systemctl prints
        states = [
            "active" if service_pid(u.removesuffix(".service")) else "inactive" for u in argv[1:]
        ]
        print("\n".join(states))
        sys.exit(0 if "active" in states else 3)
    if len(argv) == 2 and argv[0] in ("start", "restart", "stop", "is-active", "enable"):
        verb, unit = argv[0], argv[1].removesuffix(".service")
        if verb == "is-active":
            active = service_pid(unit) is not None
            print("active" if active else "inactive")
            sys.exit(0 if active else 3)
        if verb in ("stop", "restart"):
            stop_service(unit)
        if verb in ("start", "restart"):
            start_unit(unit)
        return
    if len(argv) == 3 and argv[0] in ("enable", "disable") and argv[1] == "--now":
        unit = argv[2].removesuffix(".service")
        stop_service(unit) if argv[0] == "disable" else start_unit(unit)
        return
    raise Refused


# ---------------------------------------------------------------- kubectl


def tool_kubectl(version, argv, server=None):
    server = server or admin_server()
    a = argv
    if a == ["get", "nodes", "-o", "json"]:
        print(json.dumps(nodes_json(api(server, "GET", "/nodes"))))
        return
    if a == ["get", "nodes", "-o", "json", "--watch", "--output-watch-events"]:
        return watch_nodes(server)
    if a == ["get", "nodes"]:
        print(f"{'NAME':<16}{'STATUS':<28}{'ROLES':<28}VERSION")
        for name, n in sorted(api(server, "GET", "/nodes").items()):
            status = ("Ready" if n["ready"] else "NotReady") + (
                ",SchedulingDisabled" if n["unschedulable"] else ""
            )
            print(f"{name:<16}{status:<28}{','.join(n['roles']) or '<none>':<28}{n['version']}")
        return
    if len(a) == 3 and a[:2] == ["apply", "-f"]:
        objects = manifest_objects(a[2])
        results = api(server, "POST", "/objects", {"objects": objects})["results"]
        for obj, result in zip(objects, results, strict=True):
            print(f"{obj['kind'].lower()}/{obj['name']} {result}")
        return
    if a == ["version", "--client"]:
        print(f"Client Version: {version}")
        return
    if len(a) == 2 and a[0] in ("cordon", "uncordon"):
        api(server, "POST", f"/nodes/{a[1]}/{a[0]}", {})
        print(f"node/{a[1]} {a[0]}ed")
        return
    if (
        len(a) == 4
        and a[0] == "drain"
        and a[2:] == ["--ignore-daemonsets", "--delete-emptydir-data"]
    ):
        api(server, "POST", f"/nodes/{a[1]}/drain", {})
        print(f"node/{a[1]} cordoned\nnode/{a[1]} drained")
        return
    if len(a) == 3 and a[:2] == ["delete", "node"]:
        api(server, "DELETE", f"/nodes/{a[2]}")
        print(f'node "{a[2]}" deleted')
        return
    if len(a) >= 4 and a[:2] in (["label", "node"], ["taint", "node"]) and a[-1] == "--overwrite":
        changes = a[3:-1]
        removes = [c[:-1] for c in changes if c.endswith("-")]
        sets = [c for c in changes if not c.endswith("-")]
        if a[0] == "label":
            body = {"set": dict(s.split("=", 1) for s in sets), "remove": removes}
            if not all("=" in s for s in sets):
                raise Refused
        else:
            body = {"set": sets, "remove": removes}
        api(server, "POST", f"/nodes/{a[2]}/{a[0]}s", body)
        print(f"node/{a[2]} {a[0]}ed")
        return
    raise Refused


def watch_nodes(server, interval=0.1):
    """Print one {"type", "object"} event per line for each node added, changed or deleted,
    the current nodes first (ADDED), as `kubectl get -w --output-watch-events` does. Ends
    when the reader goes away (the pipe reports an error) or the API server does."""
    import select

    reader_gone = select.poll()
    reader_gone.register(sys.stdout.fileno(), 0)  # POLLERR / POLLHUP are always reported
    seen = {}
    while True:
        current = {
            item["metadata"]["name"]: item
            for item in nodes_json(api(server, "GET", "/nodes"))["items"]
        }
        events = [
            {"type": "ADDED" if name not in seen else "MODIFIED", "object": item}
            for name, item in current.items()
            if seen.get(name) != item
        ]
        events += [{"type": "DELETED", "object": seen[n]} for n in seen if n not in current]
        if events:
            try:
                print("\n".join(json.dumps(e) for e in events), flush=True)
            except BrokenPipeError:
                return
        seen = current
        if reader_gone.poll(interval * 1000):
            return


def manifest_objects(path):
    """kind, name, namespace and text of each YAML document (the stand-in has no YAML parser)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        print(f'error: the path "{path}" does not exist ({e.strerror})', file=sys.stderr)
        sys.exit(1)
    objects = []
    for doc in re.split(r"^---\s*$", text, flags=re.M):
        if not doc.strip():
            continue
        kind = re.search(r"^kind:\s*(\S+)", doc, re.M)
        meta = re.search(r"^metadata:\s*\n((?:[ \t]+.*\n?)*)", doc, re.M)
        name = re.search(r"^\s+name:\s*(\S+)", meta[1], re.M) if meta else None
        namespace = re.search(r"^\s+namespace:\s*(\S+)", meta[1], re.M) if meta else None
        if not kind or not name:
            print(
                f"error: error validating {path!r}: kind or metadata.name not set", file=sys.stderr
            )
            sys.exit(1)
        objects.append(
            {
                "kind": kind[1],
                "name": name[1],
                "namespace": namespace[1] if namespace else "default",
                "manifest": doc.strip(),
            }
        )
    return objects


def nodes_json(nodes):
    items = []
    for name, n in sorted(nodes.items()):
        labels = {"kubernetes.io/hostname": name, **n["labels"]}
        for role in n["roles"]:
            labels[f"node-role.kubernetes.io/{role}"] = ""
        taints = []
        for t in n["taints"]:
            key_value, _, effect = t.rpartition(":")
            key, _, value = key_value.partition("=")
            taints.append(
                {"key": key, "value": value, "effect": effect}
                if value
                else {"key": key, "effect": effect}
            )
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "spec": {"unschedulable": n["unschedulable"], "taints": taints},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True" if n["ready"] else "False"}],
                    "nodeInfo": {"kubeletVersion": n["version"]},
                    "addresses": [
                        {"type": "InternalIP", "address": n["address"].split(":")[0]},
                        {"type": "Hostname", "address": name},
                    ],
                },
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


# ---------------------------------------------------------------- kubeadm + kubelet

KUBE_DIR = "/etc/kubernetes"


def register_kubelet(version, server, roles):
    api(
        server,
        "POST",
        "/nodes",
        {"name": node_name(), "address": node_address(), "version": version, "roles": roles},
    )


def tool_kubelet(version, argv):
    if argv == ["--version"]:
        print(f"Kubernetes {version}")
        return
    if argv == [
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
    ]:  # the service: register, then stay
        config = json.loads(read_file("/var/lib/kubelet/config.yaml", "{}"))
        server = kubeconfig_server(f"{KUBE_DIR}/kubelet.conf")
        wait_for_api(server)
        register_kubelet(version, server, config.get("roles", []))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    raise Refused


def start_static_apiserver(leader=None):
    """kubeadm's static pod for kube-apiserver and etcd, run as one stand-in process."""
    argv = [
        sys.executable,
        os.path.join(HERE, "sandbox-standin.py"),
        "kube-apiserver",
        "-",
        f"--advertise-address={node_address()}",
    ]
    if leader:
        argv.append(f"--leader={leader}")
    spawn("kube-apiserver", argv)
    wait_for_api(f"{node_address()}:{PORT}")


def kubelet_setup(server, roles):
    write_file(f"{KUBE_DIR}/kubelet.conf", admin_kubeconfig(server), 0o600)
    write_file("/var/lib/kubelet/config.yaml", json.dumps({"roles": roles}))
    tool_systemctl(None, ["restart", "kubelet"])


def tool_kubeadm(version, argv):
    a = argv
    if a == ["version", "-o", "short"]:
        print(version)
        return
    if a == ["init", "--config=/etc/kubernetes/kubeadm.yaml", "--upload-certs"]:
        config = simple_yaml(read_file(f"{KUBE_DIR}/kubeadm.yaml"))
        if config.get("kubernetesVersion") not in (None, version):
            fail(
                f"this version of kubeadm only supports deploying clusters with the control "
                f"plane version {version}"
            )
        if os.path.exists(f"{KUBE_DIR}/admin.conf"):
            fail("[preflight] /etc/kubernetes/admin.conf already exists", 1)
        start_static_apiserver()
        server = f"{node_address()}:{PORT}"
        write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(server), 0o600)
        info = api(server, "POST", "/tokens", {})
        key = api(server, "POST", "/certificate-key", {})["certificate_key"]
        kubelet_setup(server, ["control-plane"])
        print("Your Kubernetes control-plane has initialized successfully! (SANDBOX STAND-IN)\n")
        print(
            f"  kubeadm join {server} --token {info['token']} \\\n"
            f"\t--discovery-token-ca-cert-hash {info['ca_hash']} \\\n"
            f"\t--control-plane --certificate-key {key}"
        )
        return
    if a == ["token", "create", "--print-join-command"]:
        info = api(admin_server(), "POST", "/tokens", {})
        print(
            f"kubeadm join {info['server']} --token {info['token']} "
            f"--discovery-token-ca-cert-hash {info['ca_hash']} "
        )
        return
    if a == ["init", "phase", "upload-certs", "--upload-certs"]:
        key = api(admin_server(), "POST", "/certificate-key", {})["certificate_key"]
        print(
            f'[upload-certs] Storing the certificates in Secret "kubeadm-certs"\n'
            f"[upload-certs] Using certificate key:\n{key}"
        )
        return
    if (
        len(a) in (6, 9)
        and a[0] == "join"
        and a[2] == "--token"
        and a[4] == "--discovery-token-ca-cert-hash"
    ):
        control_plane = len(a) == 9
        if control_plane and (a[6] != "--control-plane" or a[7] != "--certificate-key"):
            raise Refused
        if os.path.exists(f"{KUBE_DIR}/kubelet.conf"):
            fail("[preflight] /etc/kubernetes/kubelet.conf already exists", 1)
        server = a[1]
        role = "control-plane" if control_plane else "worker"
        join_cluster(
            server, a[3], role, ca_hash=a[5], certificate_key=a[8] if control_plane else None
        )
        if control_plane:
            start_static_apiserver(leader=server)
            own = f"{node_address()}:{PORT}"
            write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(own), 0o600)
            kubelet_setup(own, ["control-plane"])
        else:
            kubelet_setup(server, [])
        print("This node has joined the cluster (SANDBOX STAND-IN).")
        return
    if a == ["reset", "-f"]:
        server = kubeconfig_server(f"{KUBE_DIR}/kubelet.conf")
        if server and service_pid("kube-apiserver"):  # a control-plane node leaves etcd
            api(server, "POST", "/etcd/remove", {"name": node_name()})
        stop_service("kubelet")
        stop_service("kube-apiserver")
        subprocess.run(["rm", "-rf", KUBE_DIR, "/var/lib/kubelet", API_DIR], check=True)
        print("[reset] SANDBOX STAND-IN: the node was reset")
        return
    if len(a) == 4 and a[:2] == ["upgrade", "apply"] and a[3] == "-y":
        if a[2] != version:
            fail(f"the kubeadm binary is {version}; it cannot upgrade to {a[2]}")
        upgrade_control_plane()
        print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{version}".')
        return
    if a == ["upgrade", "node"]:
        if service_pid("kube-apiserver"):
            upgrade_control_plane()
        print("[upgrade] The configuration for this node was successfully updated!")
        return
    raise Refused


def upgrade_control_plane():
    """Restart the static control plane with this (new) binary; keep leader/follower roles."""
    pidfile = read_file(f"/proc/{service_pid('kube-apiserver')}/cmdline", "") or ""
    leader = next(
        (p.split("=", 1)[1] for p in pidfile.split("\0") if p.startswith("--leader=")), None
    )
    stop_service("kube-apiserver")
    start_static_apiserver(leader)


# ---------------------------------------------------------------- k3s

K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
K3S_TOKEN = "/var/lib/rancher/k3s/server/token"


def tool_k3s(version, argv):
    import threading

    k3s_version = f"{version}+k3s1"
    if argv == ["--version"]:
        print(f"k3s version {k3s_version} (SANDBOX STAND-IN)")
        return
    if argv and argv[0] == "kubectl":
        return tool_kubectl(version, argv[1:])
    if argv in (["server"], ["agent"]):
        config = simple_yaml(read_file(K3S_CONFIG))
        token = config.get("token") or fail("--token is required")
        labels = dict(x.split("=", 1) for x in config.get("node-label", []) if "=" in x)
        if argv == ["server"]:
            own = f"{node_address()}:{PORT}"
            leader = None
            if config.get("cluster-init") != "true":
                leader = (config.get("server") or fail("--server is required")).replace(
                    "https://", ""
                )
                if not os.path.exists(K3S_TOKEN):  # first start: join the etcd cluster
                    join_cluster(leader, token, "control-plane")
            write_file(K3S_TOKEN, token + "\n", 0o600)
            write_file("/etc/rancher/k3s/k3s.yaml", admin_kubeconfig(own), 0o600)
            httpd = make_api_server("k3s", leader, token)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            wait_for_api(own)
            register_kubelet(version, own, ["control-plane", "etcd", "master"])
            api(own, "POST", f"/nodes/{node_name()}/labels", {"set": labels})
            while True:
                time.sleep(3600)
        server = (config.get("server") or fail("--server is required")).replace("https://", "")
        if not os.path.exists("/var/lib/rancher/k3s/agent/joined"):
            join_cluster(server, token, "worker")
            write_file("/var/lib/rancher/k3s/agent/joined", "yes\n")
        register_kubelet(version, server, [])
        api(server, "POST", f"/nodes/{node_name()}/labels", {"set": labels})
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    raise Refused


# ---------------------------------------------------------------- k0s

K0S_DATA = "/var/lib/k0s"


def k0s_token_file(path):
    import base64

    text = (read_file(path) or fail(f"token file {path} not found")).strip()
    try:
        return json.loads(base64.b64decode(text)), text
    except ValueError:
        fail("the join token is not valid")


def tool_k0s(version, argv):
    k0s_version = f"{version}+k0s.0"
    a = argv
    if a == ["version"]:
        print(k0s_version)
        return
    if a and a[0] == "kubectl":
        return tool_kubectl(version, a[1:], server=f"{node_address()}:{PORT}")
    if a == ["kubeconfig", "admin"]:
        print(admin_kubeconfig(f"{node_address()}:{PORT}"), end="")
        return
    if (
        len(a) in (4, 6)
        and a[:2] == ["install", "controller"]
        and a[-2:] == ["-c", "/etc/k0s/k0s.yaml"]
    ):
        token = a[3] if len(a) == 6 and a[2] == "--token-file" else None
        if len(a) == 6 and token is None:
            raise Refused
        extra = f" --token-file {token}" if token else ""
        write_file(
            f"{UNIT_DIR}/k0scontroller.service",
            f"[Service]\nExecStart=/usr/local/bin/k0s controller -c /etc/k0s/k0s.yaml{extra}\n",
        )
        return
    if len(a) == 4 and a[:3] == ["install", "worker", "--token-file"]:
        write_file(
            f"{UNIT_DIR}/k0sworker.service",
            f"[Service]\nExecStart=/usr/local/bin/k0s worker --token-file {a[3]}\n",
        )
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
            wait_for_api(f"{node_address()}:{PORT}")
        return
    if a == ["reset"]:
        if service_pid("k0scontroller") or service_pid("k0sworker"):
            fail("k0s is still running; run k0s stop first")
        subprocess.run(
            [
                "rm",
                "-rf",
                K0S_DATA,
                API_DIR,
                f"{UNIT_DIR}/k0scontroller.service",
                f"{UNIT_DIR}/k0sworker.service",
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
        info = api(f"{node_address()}:{PORT}", "POST", "/tokens", {"role": a[2].split("=")[1]})
        print(info["token"])
        return
    if len(a) == 4 and a[:3] == ["etcd", "leave", "--peer-address"]:
        api(f"{node_address()}:{PORT}", "POST", "/etcd/remove", {"peer": a[3]})
        return
    if a == ["etcd", "member-list"]:
        members = api(f"{node_address()}:{PORT}", "GET", "/etcd")
        print(json.dumps({"members": {n: f"https://{ip}:2380" for n, ip in members.items()}}))
        return
    if a[:3] == ["controller", "-c", "/etc/k0s/k0s.yaml"] and len(a) in (3, 5):
        leader = None
        if len(a) == 5:
            claims, token = k0s_token_file(a[4])
            leader = claims["server"]
            if not os.path.exists(f"{K0S_DATA}/joined"):
                join_cluster(leader, token, "control-plane")
                write_file(f"{K0S_DATA}/joined", "yes\n")
        os.makedirs(f"{K0S_DATA}/pki", exist_ok=True)
        write_file(
            f"{K0S_DATA}/pki/admin.conf", admin_kubeconfig(f"{node_address()}:{PORT}"), 0o600
        )
        write_file(f"{K0S_DATA}/version", version + "\n")
        serve_api("k0s", leader)
        return
    if len(a) == 3 and a[:2] == ["worker", "--token-file"]:
        claims, token = k0s_token_file(a[2])
        if not os.path.exists(f"{K0S_DATA}/joined"):
            join_cluster(claims["server"], token, "worker")
            write_file(f"{K0S_DATA}/joined", "yes\n")
        register_kubelet(version, claims["server"], [])
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    raise Refused


ETCDCTL = [
    "--endpoints=https://127.0.0.1:2379",
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/server.crt",
    "--key=/etc/kubernetes/pki/etcd/server.key",
    "member",
    "list",
    "-w",
    "json",
]


def tool_etcdctl(version, argv):
    """etcdctl as run on a kubeadm control-plane node, against its stacked etcd member."""
    if argv != ETCDCTL or not service_pid("kube-apiserver"):
        raise Refused
    members = api(f"{node_address()}:{PORT}", "GET", "/etcd")
    print(
        json.dumps(
            {
                "members": [
                    {"name": name, "peerURLs": [f"https://{ip}:2380"]}
                    for name, ip in sorted(members.items())
                ]
            }
        )
    )


def tool_kube_apiserver(version, argv):
    leader = next((a.split("=", 1)[1] for a in argv if a.startswith("--leader=")), None)
    serve_api("kubernetes", leader)


TOOLS = {
    "kubeadm": tool_kubeadm,
    "kubelet": tool_kubelet,
    "kubectl": tool_kubectl,
    "k3s": tool_k3s,
    "k0s": tool_k0s,
    "systemctl": tool_systemctl,
    "kube-apiserver": tool_kube_apiserver,
    "etcdctl": tool_etcdctl,
}


def main():
    tool, version, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if tool != "kube-apiserver" and not os.environ.get("SANDBOX_SERVICE"):
        log_command(tool, argv)
    try:
        TOOLS[tool](version, argv)
    except Refused:
        print(
            f"{tool}: unknown command line (SANDBOX STAND-IN accepts only the command lines "
            f"sealer's runtimes use): {shlex.join(argv)}",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
