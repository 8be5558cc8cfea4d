"""The control-plane stand-in: an HTTP API on port 6443 over the cluster's etcd (kube-apiserver)."""

import json
import signal
import sys
import time

from .common import fail, ip_address, node_name
from .etcd import ETCD_CLIENT_PORT, ETCD_PEER_PORT, Etcd, EtcdUnavailable, etcd_url, member_names
from .store import ClusterStore, Conflict, event, new_cluster_settings

PORT = 6443


class ControlPlane:
    """What one API server does: every call reads and writes the cluster's data in etcd."""

    def __init__(self, address, etcd):
        self.address = address
        self.etcd = etcd
        self.store = ClusterStore(etcd)

    def handle(self, method, path, body):
        """One API call. Returns (status, json)."""
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts == ["info"]:
            settings = self.store.read()
            return 200, {"distribution": settings["distribution"], "server": self.address}
        if method == "GET" and parts == ["etcd"]:
            return 200, member_names(self.etcd.members())
        if method == "GET" and parts == ["nodes"]:
            return 200, self.store.nodes()
        if method == "GET" and parts == ["history"]:
            return 200, self.store.history()
        if method == "GET" and parts == ["objects"]:
            return 200, self.store.read().get("objects", {})
        if method == "GET" and parts[:1] == ["pods"] and len(parts) <= 2:
            return 200, self.pods(parts[1] if len(parts) == 2 else None)
        if method == "POST" and len(parts) == 3 and parts[0] == "pods" and parts[2] == "status":
            report = {group: body.get(group) or {} for group in ("pods", "static")}
            self.store.report_pods(parts[1], report)
            return 200, {}
        if method == "GET" and len(parts) == 2 and parts[0] == "nodes":
            node = self.store.node(parts[1])
            return (200, node) if node else (404, {"error": f'nodes "{parts[1]}" not found'})
        if method == "POST" and parts == ["join"]:
            return self.join(body)
        if method == "POST" and parts == ["etcd", "remove"]:
            return self.remove_member(body)
        if parts[:1] == ["nodes"] and (method, len(parts)) in (
            ("POST", 1),
            ("DELETE", 2),
            ("POST", 3),
        ):
            return self.change_node(method, parts, body)
        handler = self.settings_writer(method, parts, body)
        if handler is None:
            return 404, {"error": f"the server could not find the requested resource ({path})"}
        return self.store.change(handler)

    def pods(self, node=None):
        """The pods the controllers and the scheduler place (scheduler.placements). For one
        node (its kubelet asks): where they are and what they run. For all: with the status
        each node's kubelet reported, and the mirror pods of its static pods."""
        from .scheduler import placements

        nodes = self.store.nodes()
        placed = placements(self.store.read().get("objects", {}), nodes)
        if node is not None:
            return [p for p in placed if p["node"] == node]
        reported = {n: s for n, s in self.store.pod_statuses().items() if n in nodes}
        pods = []
        for pod in placed:
            statuses = reported.get(pod["node"], {}).get("pods") or {}
            status = statuses.get(f"{pod['namespace']}/{pod['name']}")
            pods.append({**pod, "status": status or pending_status(pod)})
        for name, report in sorted(reported.items()):
            for key, status in sorted((report.get("static") or {}).items()):
                namespace, _, pod_name = key.partition("/")
                containers = [
                    {"name": c["name"], "image": c["image"]}
                    for c in status.get("containerStatuses") or []
                ]
                pods.append(
                    {"namespace": namespace, "name": pod_name, "node": name,
                     "containers": containers, "owner": f"Node/{name}", "status": status}
                )  # fmt: skip
        return sorted(pods, key=lambda p: (p["namespace"], p["name"]))

    def change_node(self, method, parts, body):
        members = member_names(self.etcd.members())
        if method == "POST" and len(parts) == 1:
            name = body["name"]
            return self.store.change_node(name, lambda node: register_node(node, members, body))
        name = parts[1]
        if method == "POST":
            return self.store.change_node(
                name, lambda node: node_call(node, members, parts[2], name, body)
            )
        k3s = self.store.read()["distribution"] == "k3s"
        status, result = self.store.change_node(
            name, lambda node: delete_node(node, members, name, k3s)
        )
        if status == 200 and k3s and name in members:
            self.remove_member_of_deleted_k3s_node(name)
        return status, result

    def settings_writer(self, method, parts, body):
        """The change one writing call makes to the cluster's settings: settings -> (status,
        result, changed)."""
        import base64
        import secrets

        if method == "POST" and parts == ["objects"]:  # kubectl apply: kind/namespace/name

            def apply(settings):
                objects, results = settings.setdefault("objects", {}), []
                for obj in body["objects"]:
                    key = f"{obj['kind']}/{obj['namespace']}/{obj['name']}"
                    old = objects.get(key)
                    objects[key] = obj
                    results.append(
                        "created" if old is None else "unchanged" if old == obj else "configured"
                    )
                return 200, {"results": results}, True

            return apply
        if method == "POST" and parts == ["objects", "delete"]:  # kubectl delete, helm uninstall

            def delete(settings):
                objects = settings.setdefault("objects", {})
                gone = [key for key in body["keys"] if objects.pop(key, None) is not None]
                return 200, {"deleted": gone}, bool(gone)

            return delete
        if method == "POST" and parts == ["tokens"]:
            token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"

            def create_token(settings):
                value = token
                if body.get("role"):  # k0s: the token names the API server and the role
                    claims = {"server": settings["endpoint"], "role": body["role"], "token": token}
                    value = base64.b64encode(json.dumps(claims).encode()).decode()
                settings["tokens"].append(value)
                result = {
                    "token": value,
                    "ca_hash": settings["ca_hash"],
                    "server": settings["endpoint"],
                }
                return 200, result, True

            return create_token
        if method == "POST" and parts == ["certificate-key"]:
            key = secrets.token_hex(32)

            def new_key(settings):
                settings["certificate_key"] = key
                return 200, {"certificate_key": key}, True

            return new_key
        if method == "POST" and parts == ["cluster-configuration"]:

            def upload(settings):
                settings["cluster_configuration"] = body
                return 200, {"ok": True}, True

            return upload
        return None

    def join(self, body):
        """Admit a node. A control-plane node becomes an etcd member here (`member add`), and
        gets the member list it starts its own member with. The history is written first:
        once a member is added, the cluster has no quorum until that member starts."""
        settings = self.store.read()
        problem = join_problem(settings, body)
        if problem:
            return 403, {"error": problem}
        name = body["name"]
        existing = self.store.node(name)
        if existing and existing.get("ready") and existing["address"] != body["address"]:
            return 409, {"error": f"a Node with name {name!r} and status Ready already exists"}
        control_plane = body["role"] == "control-plane"
        members = self.etcd.members()
        peer = etcd_url(body["address"], ETCD_PEER_PORT)
        added = any(peer in m.get("peerURLs", []) for m in members)
        named = member_names(members)
        if control_plane:
            named[name] = body["address"]
        events = [event(named, "joined", node=name, role=body["role"])]
        if control_plane and not added:
            events.insert(0, event(named, "etcd_member_added", node=name))
        self.store.add_events(events)
        result = {"ok": True}
        if control_plane:  # kubeadm: the certificates and kubeadm-config, by certificate key
            result["ca"] = settings.get("ca")
            result["cluster_configuration"] = settings.get("cluster_configuration")
            if not added:
                members = self.etcd.add_member(peer).get("members") or []
            result["initial_cluster"] = ",".join(
                f"{m.get('name') or name}={m['peerURLs'][0]}" for m in members if m.get("peerURLs")
            )
        return 200, result

    def remove_member(self, body):
        """`member remove`, asked of the members that stay (a member removing itself stops
        before it can answer); the history is written through them too."""
        members = self.etcd.members()
        peer = etcd_url(body.get("peer", ""), ETCD_PEER_PORT)
        gone = [
            m for m in members if m.get("name") == body.get("name") or peer in m.get("peerURLs", [])
        ]
        stay = [u for m in members if m not in gone for u in m.get("clientURLs", [])]
        if not gone or not stay:
            return 200, {"removed": []}
        via = Etcd(stay)
        for m in gone:
            via.remove_member(m["ID"])
        names = [m.get("name", "") for m in gone]
        left = member_names(via.members())
        ClusterStore(via).add_events([event(left, "etcd_member_removed", node=n) for n in names])
        return 200, {"removed": names}

    def remove_member_of_deleted_k3s_node(self, name):
        """After the node's deletion is written: removing a member (maybe the leader) starts
        an election, and the write should not wait on it."""
        for m in self.etcd.members():
            if m.get("name") == name:
                self.etcd.remove_member(m["ID"])


def join_problem(settings, body):
    token = body.get("token")
    k3s = settings["distribution"] == "k3s"
    valid = token in settings["tokens"] or (k3s and token == settings["secret"])
    if not valid:
        return "couldn't validate the identity of the API Server: the join token is not valid"
    if settings["distribution"] == "kubernetes":
        if body.get("ca_hash") != settings["ca_hash"]:
            return (
                "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "
                "match the --discovery-token-ca-cert-hash"
            )
        if (
            body["role"] == "control-plane"
            and body.get("certificate_key") != settings["certificate_key"]
        ):
            return (
                "error downloading the secret: the certificate key is invalid or expired; run "
                "kubeadm init phase upload-certs --upload-certs"
            )
    return ""


# The node changes: node (None if there is none) -> (status, result, write), write None or
# (node after, None to delete it; events).


def register_node(node, members, body):
    """The kubelet's registration; its --node-labels are set with it, as the kubelet does."""
    events = []
    if node is None:
        node = {
            "address": body["address"],
            "roles": body["roles"],
            "labels": {},
            "taints": [],
            "unschedulable": False,
        }
        events.append(event(members, "node_registered", node=body["name"]))
    node.update(version=body["version"], ready=True, address=body["address"])
    node["roles"] = body["roles"]
    node["labels"].update(body.get("labels") or {})
    return 200, node, (node, events)


def delete_node(node, members, name, k3s):
    if node is None:
        return 404, {"error": f'nodes "{name}" not found'}, None
    events = []
    if k3s and name in members:  # k3s removes the node's etcd member itself
        members = {n: a for n, a in members.items() if n != name}
        events.append(event(members, "etcd_member_removed", node=name))
    events.append(event(members, "node_deleted", node=name))
    return 200, {"deleted": name}, (None, events)


def node_call(node, members, action, name, body):
    if node is None:
        return 404, {"error": f'nodes "{name}" not found'}, None
    events = []
    if action in ("cordon", "drain"):
        node["unschedulable"] = True
        events.append(event(members, action, node=name))
    elif action == "uncordon":
        node["unschedulable"] = False
        events.append(event(members, "uncordon", node=name))
    elif action == "labels":
        node["labels"].update({k: v for k, v in body.get("set", {}).items()})
        for key in body.get("remove", []):
            node["labels"].pop(key, None)
    elif action == "taints":
        changed = {
            x.split("=")[0].split(":")[0] for x in body.get("set", []) + body.get("remove", [])
        }
        keep = [t for t in node["taints"] if t.split("=")[0].split(":")[0] not in changed]
        node["taints"] = keep + body.get("set", [])
    elif action == "status":
        node["ready"] = bool(body.get("ready"))
    else:
        return 404, {"error": f"unknown node action {action}"}, None
    return 200, node, (node, events)


def pending_status(pod):
    """A pod no kubelet has reported on yet: not scheduled, or its containers being made."""
    if not pod["node"]:
        return {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
            "containerStatuses": [],
        }
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    return {
        "phase": "Pending",
        "containerStatuses": [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
             "state": waiting}
            for c in pod["containers"]
        ],
    }  # fmt: skip


def make_api_server(address, etcd_endpoints):
    """The control-plane stand-in on this node's address (never 0.0.0.0: hosts may share a
    network namespace), backed by the etcd cluster."""
    import http.server
    import socketserver

    plane = ControlPlane(address, Etcd(etcd_endpoints))

    class ApiHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                status, result = plane.handle(method, self.path, json.loads(raw or b"{}"))
            except (EtcdUnavailable, Conflict) as e:
                status, result = 503, {"error": f"etcdserver: request timed out ({e})"}
            except Exception as e:  # noqa: BLE001 - a stand-in bug: say it, do not hang up
                status, result = 500, {"error": f"SANDBOX STAND-IN internal error: {e!r}"}
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
        request_queue_size = 1024  # the listen backlog: hundreds of nodes join at once (was 5)

    return Server((address, PORT), ApiHandler)


def init_cluster_data(address, distribution, endpoint, secret=None, extra=None):
    """The first control-plane node writes the cluster's settings (once)."""
    store = ClusterStore(Etcd([etcd_url(address, ETCD_CLIENT_PORT)]))
    store.create({**new_cluster_settings(distribution, endpoint, secret), **(extra or {})})
    if not any(e["event"] == "etcd_member_added" for e in store.history()):
        store.add_events([event({node_name(): address}, "etcd_member_added", node=node_name())])


def wait_for_api(server, timeout=15):
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{server}/info", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    fail(f"the API server at {server} did not come up")


def tool_kube_apiserver(version, argv):
    flags = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    address = ip_address(flags.get("--advertise-address"), "--advertise-address")
    httpd = make_api_server(address, [flags["--etcd-servers"]])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd.serve_forever()
