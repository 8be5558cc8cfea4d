#!/usr/bin/python3
"""SANDBOX STAND-IN for kubeadm, kubelet, kubectl, k3s, k0s and systemctl. NOT the real tools.

No Kubernetes binary can be downloaded on the machines sealer is tested on, so the sandbox
ClusterImages carry this one file instead. It accepts exactly the command lines that sealer's
runtimes use (the real tools' syntax) and refuses anything else with exit code 2.

What is real underneath: every control-plane node runs a member of a real etcd cluster (the
image carries Debian's etcd), and the control-plane stand-in (an HTTP server on the node's
address, port 6443) keeps the cluster's nodes, join tokens and a history of membership and
cordons in it. Any control-plane node serves the API; losing one loses nothing while etcd has
quorum, and nothing can be written without it. Members are added and removed with etcd's own
membership calls, as kubeadm, k3s and k0s do.

What a stand-in knows about its node is what the real tool would see: its flags, its config
files (read with a real YAML parser) and the host's hostname. Nothing sandbox-specific: the
images work on any Linux host with Python 3. Every invocation is logged to
/var/log/sandbox-standin/commands.log.

The images carry it as lib/sandbox-standin/sandbox_standin.py, compiled; each tool's wrapper
in bin/ imports it and calls main() with TOOL VERSION ARGS...  (standard library + PyYAML)
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

# The HTTP, threading and YAML modules are imported where they are used: most invocations
# (systemctl, --version, ...) need none of them, and every stand-in start costs CPU on hosts
# that share two cores.

# This module lives in the image's lib/sandbox-standin (with PyYAML, etcd, etcdctl), installed
# as /usr/local/lib/sandbox-standin; the tools' wrappers are in the bin/ beside lib/.
LIB = os.path.dirname(os.path.realpath(__file__))
BIN = os.path.normpath(os.path.join(LIB, "..", "..", "bin"))
ETCD_BIN = os.path.join(LIB, "etcd")
ETCDCTL_BIN = os.path.join(LIB, "etcdctl")
LOG_DIR = "/var/log/sandbox-standin"
UNIT_DIR = "/etc/systemd/system"
# What `systemctl enable` records (a unit's WantedBy=multi-user.target): the units the host
# starts when it boots (the sandbox host's init reads it, as systemd does).
WANTS_DIR = f"{UNIT_DIR}/multi-user.target.wants"
RUN_DIR = "/run/sandbox-systemd"
PORT = 6443
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
# The control plane's data in etcd, one key per object as a real API server keeps it: a write
# touches one node, and a thousand nodes joining at once do not contend for one document.
CLUSTER_KEY = "/sandbox/cluster"  # the cluster's settings: tokens, CA, endpoint, objects
NODES_PREFIX = "/sandbox/nodes/"  # one key per node
HISTORY_PREFIX = "/sandbox/history/"  # one key per event, in etcd's commit order
# Tools whose runs only read, for tests that check "no command that changes anything ran".
READ_ONLY = re.compile(
    r"^(kubectl (get|version)|k3s (--version|kubectl get)|k0s (version|kubectl get|etcd member-list"
    r"|kubeconfig)|kubeadm version|kubelet --version|systemctl is-active|crictl ps"
    r"|etcdctl --endpoints=\S+ \S+ \S+ \S+ (member list|endpoint health|snapshot save))"
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


def load_yaml_documents(path, what):
    """Every document of a YAML file, parsed by PyYAML (multi-document, flow and block)."""
    sys.path.insert(0, LIB)
    import yaml

    text = read_file(path)
    if text is None:
        fail(f"unable to read {what} {path}: no such file or directory")
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{path}: {what} is not valid YAML: {e}")


def load_yaml(path, what):
    docs = load_yaml_documents(path, what)
    if len(docs) > 1:
        fail(f"{path}: {what} holds {len(docs)} documents; one was expected")
    config = docs[0] if docs else {}
    if not isinstance(config, dict):
        fail(f"{path}: {what} is not a mapping")
    return config


def ip_address(value, what):
    """A node address given to the tool; refused unless it is an IPv4 or IPv6 address."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        fail(f"{what}: {value!r} is not a valid IP address")


# ---------------------------------------------------------------- API client


class Unreachable(Exception):
    """The API server did not answer (down, busy, restarting): worth asking again."""


def api(server, method, path, body=None, timeout=10):
    """One call to a control-plane stand-in; `server` is host:port, a name or an address."""
    try:
        return call_api(server, method, path, body, timeout)
    except Unreachable as e:
        fail(str(e))


def call_api(server, method, path, body=None, timeout=10):
    """api(), but an API server that does not answer raises Unreachable."""
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


def with_backoff(attempt, patience=None, retry_on=Unreachable):
    """attempt() until it returns, waiting between tries as the kubelet does (0.2 s, doubling
    up to 7 s). retry_on: the errors worth another try; patience: seconds after which the last
    one stands (None: try for ever)."""
    deadline = None if patience is None else time.time() + patience
    delay = 0.2
    while True:
        try:
            return attempt()
        except retry_on as e:
            if deadline is not None and time.time() > deadline:
                raise
            if not isinstance(e, SystemExit):  # api() has said why on stderr already
                print(f"{e}; retrying", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 7.0)


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


# ---------------------------------------------------------------- etcd (real), over its v3 JSON API


class EtcdUnavailable(Exception):
    """No member answered (or the cluster has no quorum): nothing can be read or written."""


class Etcd:
    """A client of a real etcd cluster through its v3 JSON gateway (standard library only)."""

    def __init__(self, endpoints, timeout=3):
        self.endpoints = list(endpoints)
        self.timeout = timeout

    def call(self, path, body, attempts=2):
        """One request, to the first member that answers. A request that timed out (a
        leader election drops proposals in flight) is tried again, as etcd's clients do;
        every write sealer's stand-in makes is a compare-and-swap, so a retry is safe."""
        for attempt in range(attempts):
            try:
                return self._call_once(path, body)
            except EtcdUnavailable as e:
                if "timed out" not in str(e) or attempt == attempts - 1:
                    raise

    def _call_once(self, path, body):
        import urllib.error
        import urllib.request

        errors = []
        for endpoint in self.endpoints:
            request = urllib.request.Request(
                f"{endpoint}{path}",
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as e:
                errors.append(f"{endpoint}: {e.read().decode(errors='replace').strip()}")
            except OSError as e:
                errors.append(f"{endpoint}: {e}")
        raise EtcdUnavailable("etcdserver: no member answered: " + "; ".join(errors))

    @staticmethod
    def _b64(text):
        import base64

        return base64.b64encode(text.encode()).decode()

    def get(self, key):
        """(value, mod_revision) of key; (None, 0) when it is not set."""
        import base64

        kvs = self.call("/v3/kv/range", {"key": self._b64(key)}).get("kvs") or []
        if not kvs:
            return None, 0
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0]["mod_revision"])

    def put_if(self, key, value, mod_revision):
        """Write key only if nobody wrote it since mod_revision (0: not set yet)."""
        return self.commit_if(key, mod_revision, {key: value})

    def commit_if(self, key, mod_revision, writes):
        """Write {key: value} (None deletes) in one transaction, only if nobody wrote key
        since mod_revision (0: not set yet)."""
        success = [
            {"request_delete_range": {"key": self._b64(k)}}
            if v is None
            else {"request_put": {"key": self._b64(k), "value": self._b64(v)}}
            for k, v in writes.items()
        ]
        compare = {"key": self._b64(key), "result": "EQUAL", "target": "MOD"}
        body = {"compare": [{**compare, "mod_revision": str(mod_revision)}], "success": success}
        return bool(self.call("/v3/kv/txn", body).get("succeeded"))

    def put_all(self, writes):
        """Write {key: value} in one transaction."""
        success = [
            {"request_put": {"key": self._b64(k), "value": self._b64(v)}} for k, v in writes.items()
        ]
        if success:
            self.call("/v3/kv/txn", {"success": success})

    def prefixed(self, prefix):
        """[(key, value)] of every key under prefix, in the order they were created."""
        import base64

        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = {
            "key": self._b64(prefix),
            "range_end": self._b64(end),
            "sort_order": "ASCEND",
            "sort_target": "CREATE",
        }
        kvs = self.call("/v3/kv/range", body).get("kvs") or []
        return [
            (base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")).decode())
            for kv in kvs
        ]

    def members(self):
        return self.call("/v3/cluster/member/list", {}).get("members") or []

    def add_member(self, peer_url, timeout=60):
        """`member add`, retried while etcd refuses it for now ("unhealthy cluster", "not
        enough started members"): with its strict reconfiguration check, etcd adds a member
        only when every member has been connected for a few seconds, and a member just back
        from a reboot counts once it has (kubeadm retries the same way)."""
        deadline = time.time() + timeout
        passing = ("unhealthy cluster", "not enough started members")
        while True:
            try:
                return self.call("/v3/cluster/member/add", {"peerURLs": [peer_url]})
            except EtcdUnavailable as e:
                if not any(p in str(e) for p in passing) or time.time() > deadline:
                    raise
                time.sleep(0.5)

    def remove_member(self, member_id):
        self.call("/v3/cluster/member/remove", {"ID": member_id})


def etcd_url(address, port):
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


def member_names(members):
    """{name: address} of the started members (a member added but not started has no name)."""
    out = {}
    for m in members:
        if m.get("name"):
            out[m["name"]] = re.sub(r"^https?://|:\d+$", "", m["peerURLs"][0]).strip("[]")
    return out


def etcd_command(name, address, data_dir, initial_cluster=None):
    """This node's etcd member, as kubeadm's static pod, k3s or k0s runs it: a new cluster of
    one (initial_cluster None), or a member already added to a running cluster. A member
    that has data starts from it and ignores the initial-cluster flags."""
    peer = etcd_url(address, ETCD_PEER_PORT)
    client = etcd_url(address, ETCD_CLIENT_PORT)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    return [
        ETCD_BIN,
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        "--initial-cluster-token=sandbox",
        f"--initial-cluster={initial_cluster or f'{name}={peer}'}",
        f"--initial-cluster-state={'existing' if initial_cluster else 'new'}",
        # the API servers keep the cluster in one document rewritten on every change; without
        # compaction a thousand joining nodes leave gigabytes of its old revisions in memory
        # (a real kube-apiserver compacts etcd every 5 minutes)
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=1m",
    ]


def start_embedded_etcd(address, data_dir, initial_cluster=None):
    """k3s's and k0s's etcd: a child of the server process. Returns it once it is healthy."""
    child = spawn_child("etcd", etcd_command(node_name(), address, data_dir, initial_cluster))
    wait_for_etcd(etcd_url(address, ETCD_CLIENT_PORT))
    return child


def has_data(data_dir):
    return os.path.isdir(os.path.join(data_dir, "member"))


def wait_for_etcd(client, timeout=30):
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as response:
                if json.loads(response.read()).get("health") == "true":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    fail(f"etcd at {client} is not healthy after {timeout}s")


# ---------------------------------------------------------------- control-plane stand-in


class Conflict(Exception):
    pass


class ClusterStore:
    """The control plane's data in etcd: the cluster's settings (one small document), a key
    per node and a key per event. Every change is a compare-and-swap on the one key it
    changes, so that the API servers on every control-plane node can write at once."""

    def __init__(self, etcd):
        self.etcd = etcd

    def read(self):
        """The cluster's settings."""
        text, _ = self.etcd.get(CLUSTER_KEY)
        if text is None:
            raise EtcdUnavailable("the cluster has not been initialised")
        return json.loads(text)

    def create(self, settings):
        """The first control-plane node's settings; kept if another node created them first."""
        return self.etcd.put_if(CLUSTER_KEY, json.dumps(settings), 0)

    def change(self, change):
        """Apply change(settings) -> (status, result, changed) until it lands on the latest."""
        for attempt in range(200):
            text, revision = self.etcd.get(CLUSTER_KEY)
            if text is None:
                raise EtcdUnavailable("the cluster has not been initialised")
            settings = json.loads(text)
            status, result, changed = change(settings)
            if not changed or self.etcd.put_if(CLUSTER_KEY, json.dumps(settings), revision):
                return status, result
            backoff(attempt)
        raise Conflict("too many concurrent writers")

    def node(self, name):
        text, _ = self.etcd.get(NODES_PREFIX + name)
        return None if text is None else json.loads(text)

    def nodes(self):
        return {
            key[len(NODES_PREFIX) :]: json.loads(value)
            for key, value in self.etcd.prefixed(NODES_PREFIX)
        }

    def change_node(self, name, change):
        """Apply change(node or None) -> (status, result, write) until it lands on the node's
        latest version; write is None (nothing to write) or (node, events), node None to
        delete it. The node and its events are written in one transaction."""
        key = NODES_PREFIX + name
        for attempt in range(200):
            text, revision = self.etcd.get(key)
            status, result, write = change(None if text is None else json.loads(text))
            if write is None:
                return status, result
            node, events = write
            writes = {key: None if node is None else json.dumps(node)}
            writes.update(event_writes(events))
            if self.etcd.commit_if(key, revision, writes):
                return status, result
            backoff(attempt)
        raise Conflict("too many concurrent writers")

    def add_events(self, events):
        self.etcd.put_all(event_writes(events))

    def history(self):
        """Every event in the order etcd committed them, numbered, each with the nodes that
        were cordoned once it happened."""
        cordoned, out = set(), []
        for seq, (_, value) in enumerate(self.etcd.prefixed(HISTORY_PREFIX), 1):
            event = json.loads(value)
            if event["event"] in ("cordon", "drain"):
                cordoned.add(event.get("node"))
            elif event["event"] in ("uncordon", "node_deleted", "node_registered"):
                cordoned.discard(event.get("node"))
            out.append({"seq": seq, **event, "cordoned": sorted(cordoned)})
        return out


def backoff(attempt):
    """Writers that lost a compare-and-swap spread out before they try again."""
    import random

    time.sleep(random.uniform(0.005, 0.01 * min(attempt + 1, 20)))


def event(members, kind, **detail):
    return {"time": time.time(), "event": kind, **detail, "etcd_members": sorted(members)}


def event_writes(events):
    """Each event under a key of its own (a new one per attempt: a transaction that lost its
    compare-and-swap wrote nothing)."""
    import secrets

    return {
        f"{HISTORY_PREFIX}{time.time_ns():020d}-{secrets.token_hex(4)}": json.dumps(e)
        for e in events
    }


def new_cluster_settings(distribution, endpoint, secret=None):
    import hashlib
    import secrets

    return {
        "distribution": distribution,
        "endpoint": endpoint,  # what join commands and tokens name as the API server
        "secret": secret or secrets.token_hex(16),
        "ca_hash": "sha256:" + hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        "tokens": [],
        "certificate_key": secrets.token_hex(32),
    }


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
    """As systemd stops a unit (KillMode=control-group): SIGTERM to every process of the
    service, its children too (k3s's and k0s's embedded etcd, even one orphaned by a server
    stopped while it was still starting), a wait until all are gone, then SIGKILL."""
    pid = service_pid(name)
    if pid:
        group = os.getpgid(pid) if _leads_its_group(pid) else None
        _signal(pid, group, signal.SIGTERM)
        deadline = time.time() + 10
        while _alive(pid, group) and time.time() < deadline:
            time.sleep(0.02)
        if _alive(pid, group):
            _signal(pid, group, signal.SIGKILL)
            for _ in range(100):
                if not _alive(pid, group):
                    break
                time.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(RUN_DIR, f"{name}.pid"))


def _leads_its_group(pid):
    """Services are started in a session of their own: the service is its process group."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _signal(pid, group, sig):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)


def _alive(pid, group):
    """Any process of the service left (a zombie is gone for this purpose)."""
    if group is None:
        with contextlib.suppress(ValueError, OSError), open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
        return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(ValueError, OSError):
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":  # state, ppid, pgrp
                return True
    return False


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


def enable_unit(name):
    if not os.path.exists(f"{UNIT_DIR}/{name}.service"):
        fail(f"Failed to enable unit: Unit file {name}.service does not exist.")
    with open(f"{UNIT_DIR}/{name}.service") as f:
        if "WantedBy=multi-user.target" not in f.read().splitlines():
            print(  # systemd's own warning: nothing is enabled
                f"The unit files have no installation config (WantedBy=, ...) for {name}.service",
                file=sys.stderr,
            )
            return
    os.makedirs(WANTS_DIR, exist_ok=True)
    link = f"{WANTS_DIR}/{name}.service"
    if not os.path.islink(link):
        os.symlink(f"{UNIT_DIR}/{name}.service", link)
        print(f"Created symlink {link} \u2192 {UNIT_DIR}/{name}.service.", file=sys.stderr)


def disable_unit(name):
    link = f"{WANTS_DIR}/{name}.service"
    if os.path.islink(link):
        os.unlink(link)
        print(f"Removed {link}.", file=sys.stderr)


def tool_systemctl(version, argv):
    if argv == ["daemon-reload"]:
        return
    if len(argv) >= 2 and argv[0] == "is-active":  # one line per unit, as systemctl prints
        states = [
            "active" if service_pid(u.removesuffix(".service")) else "inactive" for u in argv[1:]
        ]
        print("\n".join(states))
        sys.exit(0 if "active" in states else 3)
    if len(argv) == 2 and argv[0] in ("enable", "disable"):
        unit = argv[1].removesuffix(".service")
        enable_unit(unit) if argv[0] == "enable" else disable_unit(unit)
        return
    if len(argv) == 2 and argv[0] in ("start", "restart", "stop", "is-active"):
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
        if argv[0] == "disable":
            disable_unit(unit)
            stop_service(unit)
        else:
            enable_unit(unit)
            start_unit(unit)
        return
    raise Refused


def spawn_child(name, argv):
    """A process that lives and dies with this one (k3s's and k0s's embedded etcd)."""
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, f"{name}.log"), "a") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def stop_with(children):
    """On SIGTERM (systemctl stop), stop the children first, then exit."""

    def stop(*_):
        for child in children:
            if child is not None and child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def stay():
    while True:
        time.sleep(3600)


def rest(role):
    """What a registered agent does from then on: nothing, in the same process (its pid is
    the service's), but as a 1 MB `sleep` instead of a 27 MB Python: a thousand sandbox nodes
    would otherwise need 27 GB. SIGTERM still ends it, as it ends the service."""
    sys.stdout.flush()
    os.execv("/bin/sleep", [f"{role} (SANDBOX STAND-IN, registered)", "infinity"])


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
    if a and a[0] == "apply":
        objects = [obj for path in apply_paths(a[1:]) for obj in manifest_objects(path)]
        namespace = apply_namespace(a[1:])
        for obj in objects:
            obj["namespace"] = namespace or obj["namespace"]
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
    if a and a[0] == "drain":
        return kubectl_drain(server, a[1:])
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


DRAIN_SWITCHES = ("--ignore-daemonsets", "--delete-emptydir-data", "--force", "--disable-eviction")


def kubectl_drain(server, argv):
    """kubectl drain NODE: cordon, then evict (or with --disable-eviction delete) the pods bound
    to the node, as kubectl does: bare pods need --force, DaemonSet pods --ignore-daemonsets,
    emptyDir pods --delete-emptydir-data; an eviction a PodDisruptionBudget forbids is retried
    until --timeout (0: forever), then the drain fails naming the pod."""
    names, flags = [], {"--timeout": "0s", "--grace-period": "-1"}
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if arg in DRAIN_SWITCHES:
            flags[arg] = True
        elif flag in ("--timeout", "--grace-period") and eq:
            flags[flag] = value
        elif arg.startswith("-"):
            print(f"error: unknown flag: {flag}", file=sys.stderr)
            sys.exit(1)
        else:
            names.append(arg)
    if len(names) != 1:
        raise Refused
    node, timeout = names[0], go_duration(flags["--timeout"])
    api(server, "POST", f"/nodes/{node}/cordon", {})
    print(f"node/{node} cordoned")
    pods, pdbs = pods_and_budgets(api(server, "GET", "/objects"))
    mine = [p for p in pods if (p["spec"].get("nodeName") or "") == node]
    problems, evict = [], []
    for pod in mine:
        owners = [o.get("kind") for o in pod["metadata"].get("ownerReferences") or []]
        where = f"{pod['namespace']}/{pod['name']}"
        if "DaemonSet" in owners:
            if not flags.get("--ignore-daemonsets"):
                problems.append(
                    f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
                    f"{where}"
                )
            continue
        if not owners and not flags.get("--force"):
            problems.append(
                f"cannot delete Pods declare no controller (use --force to override): {where}"
            )
        elif any("emptyDir" in v for v in pod["spec"].get("volumes") or []) and not flags.get(
            "--delete-emptydir-data"
        ):
            problems.append(
                f"cannot delete Pods with local storage (use --delete-emptydir-data to override): "
                f"{where}"
            )
        else:
            evict.append(pod)
    if problems:
        print(
            f'error: unable to drain node "{node}" due to error:{", ".join(problems)}, '
            f"continuing command...\nThere are pending nodes to be drained:\n {node}",
            file=sys.stderr,
        )
        sys.exit(1)
    deadline = time.monotonic() + timeout if timeout else None
    for pod in evict:
        while not flags.get("--disable-eviction") and not eviction_allowed(pod, pods, pdbs):
            print(
                f'error when evicting pods/"{pod["name"]}" -n "{pod["namespace"]}" (will retry '
                f"after 1s): Cannot evict pod as it would violate the pod's disruption budget.",
                file=sys.stderr,
            )
            if deadline is not None and time.monotonic() + 1 > deadline:
                reason = (
                    f'error when evicting pods/"{pod["name"]}" -n "{pod["namespace"]}": global '
                    f"timeout reached: {flags['--timeout']}"
                )
                print(
                    f'error: unable to drain node "{node}" due to error:{reason}, continuing '
                    f"command...\nThere are pending nodes to be drained:\n {node}\n{reason}",
                    file=sys.stderr,
                )
                sys.exit(1)
            time.sleep(1)
            pods, pdbs = pods_and_budgets(api(server, "GET", "/objects"))
        api(server, "POST", "/objects/delete", {"keys": [pod["key"]]})
        pods = [p for p in pods if p["key"] != pod["key"]]
        verb = "deleted" if flags.get("--disable-eviction") else "evicted"
        print(f"pod/{pod['name']} {verb}")
    api(server, "POST", f"/nodes/{node}/drain", {})
    print(f"node/{node} drained")


def go_duration(text):
    """A Go duration (5m0s, 300s, 1h) in seconds; a bare number is seconds."""
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        print(f'error: invalid argument "{text}" for "--timeout" flag', file=sys.stderr)
        sys.exit(1)
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def pods_and_budgets(objects):
    """The Pod and PodDisruptionBudget objects kubectl apply stored, parsed."""
    sys.path.insert(0, LIB)
    import yaml

    pods, pdbs = [], []
    for key, obj in objects.items():
        if obj["kind"] not in ("Pod", "PodDisruptionBudget"):
            continue
        body = yaml.safe_load(obj["manifest"]) or {}
        item = {
            "key": key,
            "name": obj["name"],
            "namespace": obj["namespace"],
            "metadata": body.get("metadata") or {},
            "spec": body.get("spec") or {},
        }
        (pods if obj["kind"] == "Pod" else pdbs).append(item)
    return pods, pdbs


def eviction_allowed(pod, pods, pdbs):
    """The disruption budgets selecting the pod all allow one more disruption."""
    labels = pod["metadata"].get("labels") or {}
    for pdb in pdbs:
        wanted = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
        if pdb["namespace"] != pod["namespace"] or any(
            labels.get(k) != v for k, v in wanted.items()
        ):
            continue
        healthy = sum(
            1
            for p in pods
            if p["namespace"] == pod["namespace"]
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        )
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            allowed = budget_count(spec["maxUnavailable"], healthy)
        else:
            allowed = healthy - budget_count(spec.get("minAvailable", 0), healthy)
        if allowed < 1:
            return False
    return True


def budget_count(value, total):
    text = str(value)
    if text.endswith("%"):
        return -(-int(text[:-1]) * total // 100)  # rounded up, as the disruption controller
    return int(text)


HELM_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HELM_FLAGS = {  # flag -> takes a value; what helm install/upgrade/uninstall/list accept here
    "-n": True,
    "--namespace": True,
    "-f": True,
    "--values": True,
    "--set": True,
    "--set-string": True,
    "--version": True,
    "--timeout": True,
    "--create-namespace": False,
    "--wait": False,
    "--atomic": False,
    "--install": False,
    "-i": False,
    "-A": False,
    "--all-namespaces": False,
    "-o": True,
    "--output": True,
}


def helm_args(argv):
    """helm's command line: (positional words, {flag: [values]}); unknown flags refused."""
    words, flags, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if name not in HELM_FLAGS:
                print(f"Error: unknown flag: {name}", file=sys.stderr)
                sys.exit(1)
            if HELM_FLAGS[name] and not eq:
                i += 1
                if i >= len(argv):
                    print(f"Error: flag needs an argument: {name}", file=sys.stderr)
                    sys.exit(1)
                value = argv[i]
            flags.setdefault(name, []).append(value if HELM_FLAGS[name] else "true")
        else:
            words.append(arg)
        i += 1
    return words, flags


def helm_values(chart_dir, flags):
    """values.yaml, then each -f file, then each --set (a.b=c), later winning, as helm merges."""
    sys.path.insert(0, LIB)
    import yaml

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    values = yaml.safe_load(read_file(os.path.join(chart_dir, "values.yaml"), "")) or {}
    for path in flags.get("-f", []) + flags.get("--values", []):
        if not os.path.isfile(path):
            print(f"Error: open {path}: no such file or directory", file=sys.stderr)
            sys.exit(1)
        merge(values, yaml.safe_load(read_file(path)) or {})
    for pair in flags.get("--set", []) + flags.get("--set-string", []):
        for item in pair.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                print(
                    f'Error: failed parsing --set data: key "{key}" has no value', file=sys.stderr
                )
                sys.exit(1)
            *path, last = key.split(".")
            node = values
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
    return values


def helm_chart(ref, failed):
    """The chart's folder and Chart.yaml; a local folder only (no repository is reachable)."""
    sys.path.insert(0, LIB)
    import yaml

    if not os.path.isdir(ref):
        print(
            f"Error: {failed}: non-absolute URLs should be in form of repo_name/path_to_chart, "
            f"got: {ref}"
            if "/" not in ref
            else f"Error: {failed}: repo {ref.split('/')[0]} not found",
            file=sys.stderr,
        )
        sys.exit(1)
    chart = yaml.safe_load(read_file(os.path.join(ref, "Chart.yaml"), "") or "null")
    if not isinstance(chart, dict) or not chart.get("name") or not chart.get("version"):
        print(
            f"Error: {failed}: validation: chart.metadata.name and version are required",
            file=sys.stderr,
        )
        sys.exit(1)
    return os.path.abspath(ref), chart


def helm_releases(server, namespace=None):
    """The deployed releases: helm keeps each as a Secret sh.helm.release.v1.NAME.vREVISION."""
    found = {}
    for obj in api(server, "GET", "/objects").values():
        if obj["kind"] != "Secret" or not obj["name"].startswith("sh.helm.release.v1."):
            continue
        if namespace and obj["namespace"] != namespace:
            continue
        release = json.loads(obj["manifest"])["release"]
        current = found.get((obj["namespace"], release["name"]))
        if current is None or current["revision"] < release["revision"]:
            found[(obj["namespace"], release["name"])] = release
    return found


def tool_helm(version, argv, server=None):
    if argv in (["version"], ["version", "--short"]):
        print("v3.12.3+gsandbox" if argv[1:] else 'version.BuildInfo{Version:"v3.12.3"}')
        return
    if not argv or argv[0] not in ("install", "upgrade", "uninstall", "list", "ls", "status"):
        raise Refused
    command, (words, flags) = argv[0], helm_args(argv[1:])
    server = server or admin_server()
    namespace = (flags.get("-n") or flags.get("--namespace") or ["default"])[-1]
    if command in ("list", "ls"):
        if words:
            raise Refused
        everywhere = "-A" in flags or "--all-namespaces" in flags
        releases = helm_releases(server, None if everywhere else namespace)
        if (flags.get("-o") or flags.get("--output") or [""])[-1] == "json":
            print(json.dumps(list(releases.values())))
            return
        print(f"{'NAME':<20}{'NAMESPACE':<12}{'REVISION':<10}{'STATUS':<10}CHART")
        for r in sorted(releases.values(), key=lambda r: r["name"]):
            print(
                f"{r['name']:<20}{r['namespace']:<12}{r['revision']:<10}{r['status']:<10}{r['chart']}"
            )
        return
    failed = {"install": "INSTALLATION FAILED", "upgrade": "UPGRADE FAILED"}.get(command, "")
    expected = 2 if command in ("install", "upgrade") else 1
    if len(words) != expected:
        print(
            f'Error: "helm {command}" requires {expected} argument{"s" if expected > 1 else ""}',
            file=sys.stderr,
        )
        sys.exit(1)
    name = words[0]
    if len(name) > 53 or not HELM_RELEASE_NAME.match(name):
        print(
            f'Error: {failed or command}: release name "{name}": invalid release name, must '
            f"match regex {HELM_RELEASE_NAME.pattern} and the length must not be longer than 53",
            file=sys.stderr,
        )
        sys.exit(1)
    current = helm_releases(server, namespace).get((namespace, name))
    if command in ("status", "uninstall"):
        if current is None:
            print(
                f"Error: {'uninstall: Release not loaded' if command == 'uninstall' else 'release'}: "
                f"{name}: release: not found",
                file=sys.stderr,
            )
            sys.exit(1)
        if command == "status":
            print(
                f"NAME: {name}\nNAMESPACE: {namespace}\nSTATUS: {current['status']}\n"
                f"REVISION: {current['revision']}"
            )
            return
        keys = [
            k
            for k, o in api(server, "GET", "/objects").items()
            if o["kind"] == "Secret"
            and o["namespace"] == namespace
            and o["name"].startswith(f"sh.helm.release.v1.{name}.v")
        ]
        api(server, "POST", "/objects/delete", {"keys": keys})
        print(f'release "{name}" uninstalled')
        return
    if command == "install" and current is not None:
        print(
            "Error: INSTALLATION FAILED: cannot re-use a name that is still in use",
            file=sys.stderr,
        )
        sys.exit(1)
    if command == "upgrade" and current is None and not ({"--install", "-i"} & set(flags)):
        print(f'Error: UPGRADE FAILED: "{name}" has no deployed releases', file=sys.stderr)
        sys.exit(1)
    chart_dir, chart = helm_chart(words[1], failed)
    revision = (current["revision"] + 1) if current else 1
    release = {
        "name": name,
        "namespace": namespace,
        "revision": revision,
        "status": "deployed",
        "chart": f"{chart['name']}-{chart['version']}",
        "app_version": str(chart.get("appVersion", "")),
        "values": helm_values(chart_dir, flags),
    }
    secret = {
        "kind": "Secret",
        "name": f"sh.helm.release.v1.{name}.v{revision}",
        "namespace": namespace,
        "manifest": json.dumps({"release": release}, sort_keys=True),
    }
    api(server, "POST", "/objects", {"objects": [secret]})
    if current is None:
        print(f"NAME: {name}\nNAMESPACE: {namespace}\nSTATUS: deployed\nREVISION: {revision}")
    else:
        print(f'Release "{name}" has been upgraded. Happy Helming!\nREVISION: {revision}')


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


def apply_paths(args):
    """The files of `kubectl apply -f PATH... [-n NS] [-R]`: a folder gives its .yaml, .yml and
    .json files (its subfolders too with -R), as kubectl reads them."""
    paths, recursive, i = [], "-R" in args or "--recursive" in args, 0
    while i < len(args):
        arg = args[i]
        if arg in ("-f", "--filename") and i + 1 < len(args):
            paths.append(args[i + 1])
            i += 2
        elif arg in ("-n", "--namespace") and i + 1 < len(args):
            i += 2
        elif arg in ("-R", "--recursive"):
            i += 1
        else:
            raise Refused
    if not paths:
        print("error: must specify one of -f and -k", file=sys.stderr)
        sys.exit(1)
    files = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _dirs, names in os.walk(path):
                files += [
                    os.path.join(folder, n)
                    for n in sorted(names)
                    if n.endswith((".yaml", ".yml", ".json"))
                ]
                if not recursive:
                    break
        else:
            files.append(path)
    return files


def apply_namespace(args):
    for flag in ("-n", "--namespace"):
        if flag in args:
            return args[args.index(flag) + 1]
    return None


def manifest_objects(path):
    """kind, name, namespace and text of each object of a manifest file, read as kubectl
    reads it: every YAML document, flow or block style, and the items of a `kind: List`."""
    if not os.path.exists(path):
        print(f'error: the path "{path}" does not exist', file=sys.stderr)
        sys.exit(1)
    sys.path.insert(0, LIB)
    import yaml

    objects = []
    for doc in load_yaml_documents(path, "manifest"):
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for obj in items or []:
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            if not isinstance(meta, dict) or not obj.get("kind") or not meta.get("name"):
                print(
                    f"error: error validating {path!r}: kind or metadata.name not set",
                    file=sys.stderr,
                )
                sys.exit(1)
            objects.append(
                {
                    "kind": str(obj["kind"]),
                    "name": str(meta["name"]),
                    "namespace": str(meta.get("namespace") or "default"),
                    "manifest": yaml.safe_dump(obj, sort_keys=False).strip(),
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
MANIFESTS = f"{KUBE_DIR}/manifests"  # the static pods: etcd and kube-apiserver
KUBEADM_FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
KUBEADM_ETCD_DATA = "/var/lib/etcd"
KUBEADM_GROUP = "kubeadm.k8s.io"
# The kubeadm API versions each minor reads (kubeadm's scheme, cmd/kubeadm/app/apis/kubeadm):
# v1beta2 until 1.25, v1beta3 from 1.22, v1beta4 from 1.31.
KUBEADM_API_VERSIONS = (("v1beta2", 15, 25), ("v1beta3", 22, 99), ("v1beta4", 31, 99))
COMPONENT_API_VERSIONS = {
    "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
    "KubeProxyConfiguration": "kubeproxy.config.k8s.io/v1alpha1",
}
KUBEADM_KINDS = ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration")


def minor_of(version):
    m = re.match(r"v?1\.(\d+)\.\d+", str(version))
    return int(m[1]) if m else None


def read_kubeadm_config(path, version):
    """The documents of a kubeadm --config file, by kind, checked as kubeadm loads them
    (cmd/kubeadm/app/util/config and util/marshal.go):
    - each document needs apiVersion and kind ("kind and apiVersion is mandatory");
    - one document per GroupVersionKind ("... is specified twice in YAML file"), and one per
      kind across versions;
    - a kubeadm apiVersion this kubeadm does not read is an error (no kind registered);
    - a document of an unknown kind is ignored with a warning;
    - kubernetesVersion: not older than one minor below kubeadm, not newer than kubeadm."""
    kubeadm_minor = minor_of(version)
    readable = [
        f"{KUBEADM_GROUP}/{v}"
        for v, first, last in KUBEADM_API_VERSIONS
        if first <= kubeadm_minor <= last
    ]
    by_kind = {}
    for doc in load_yaml_documents(path, "kubeadm configuration"):
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            fail(
                f"{path}: invalid configuration: kind and apiVersion is mandatory information "
                "that must be specified"
            )
        kind, api_version = doc["kind"], doc["apiVersion"]
        if kind in by_kind:
            fail(
                f"{path}: invalid configuration: GroupVersionKind {api_version}, Kind={kind} is "
                "specified twice in YAML file"
            )
        if kind in KUBEADM_KINDS:
            if api_version not in readable:
                fail(
                    f'{path}: no kind "{kind}" is registered for version "{api_version}" '
                    f"(this kubeadm reads {', '.join(readable)})"
                )
        elif kind in COMPONENT_API_VERSIONS:
            if api_version != COMPONENT_API_VERSIONS[kind]:
                fail(f'{path}: no kind "{kind}" is registered for version "{api_version}"')
        else:
            print(
                f"W0000 [config] WARNING: Ignored YAML document with GroupVersionKind "
                f"{api_version}, Kind={kind}",
                file=sys.stderr,
            )
            continue
        by_kind[kind] = doc
    wanted = by_kind.get("ClusterConfiguration", {}).get("kubernetesVersion")
    if wanted is not None:
        wanted_minor = minor_of(wanted)
        if wanted_minor is None:
            fail(f"{path}: kubernetesVersion {wanted!r} is not a valid version")
        if wanted_minor < kubeadm_minor - 1:
            fail(
                f"this version of kubeadm only supports deploying clusters with the control "
                f"plane version >= 1.{kubeadm_minor - 1}.0. Current version: {wanted}"
            )
        if minor_of(wanted) > kubeadm_minor or (wanted_minor == kubeadm_minor and wanted > version):
            fail(f"the specified version to install ({wanted}) is newer than kubeadm ({version})")
    return by_kind


def kubelet_extra_args(registration):
    """nodeRegistration.kubeletExtraArgs: a map (v1beta3) or name/value pairs (v1beta4)."""
    args = (registration or {}).get("kubeletExtraArgs") or {}
    if isinstance(args, list):
        return {a.get("name"): a.get("value") for a in args if isinstance(a, dict)}
    return args


def write_kubeadm_flags(registration):
    """What kubeadm hands the kubelet through its systemd drop-in (kubeadm-flags.env)."""
    args = kubelet_extra_args(registration)
    flags = " ".join(f"--{k}={v}" for k, v in sorted(args.items()))
    write_file(KUBEADM_FLAGS, f'KUBELET_KUBEADM_ARGS="{flags}"\n')


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


def start_control_plane(
    version, address, cluster_configuration, initial_cluster=None, endpoint=None, extra=None
):
    """kubeadm's stacked etcd member and kube-apiserver, as static pods. The first
    control-plane node (no initial_cluster) also writes the cluster's data."""
    static_pod("etcd", etcd_command(node_name(), address, KUBEADM_ETCD_DATA, initial_cluster))
    wait_for_etcd(etcd_url(address, ETCD_CLIENT_PORT))
    if initial_cluster is None:
        init_cluster_data(address, "kubernetes", endpoint, extra=extra)
    start_kube_apiserver(address, version, apiserver_extra_args(cluster_configuration))


def apiserver_extra_args(cluster_configuration):
    """ClusterConfiguration.apiServer.extraArgs: a map (v1beta3) or name/value pairs."""
    return kubelet_extra_args(
        {"kubeletExtraArgs": (cluster_configuration.get("apiServer") or {}).get("extraArgs")}
    )


def start_kube_apiserver(address, version="", extra_args=None):
    """kubeadm's kube-apiserver static pod: the image's binary installed now (an upgrade's new
    one), kubeadm's flags, then ClusterConfiguration's extraArgs."""
    static_pod(
        "kube-apiserver",
        [
            os.path.join(BIN, "kube-apiserver"),
            f"--advertise-address={address}",
            f"--etcd-servers={etcd_url(address, ETCD_CLIENT_PORT)}",
            *(f"--{k}={v}" for k, v in sorted((extra_args or {}).items())),
        ],
        version,
    )
    wait_for_api(f"{address}:{PORT}")


def kubelet_setup(server, roles, registration):
    write_file(f"{KUBE_DIR}/kubelet.conf", admin_kubeconfig(server), 0o600)
    write_file("/var/lib/kubelet/config.yaml", json.dumps({"roles": roles}))
    write_kubeadm_flags(registration)
    tool_systemctl(None, ["restart", "kubelet"])


def preflight(path):
    if os.path.exists(path):
        fail(f"[preflight] {path} already exists", 1)


PKI = f"{KUBE_DIR}/pki"
SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc")


def openssl(*args, stdin=None):
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"openssl {args[0]}: {result.stderr.strip()}")
    return result.stdout


def make_ca():
    """kubeadm's cluster CA (10 years), and its discovery hash: sha256 of the public key."""
    os.makedirs(PKI, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=kubernetes",
        "-keyout",
        f"{PKI}/ca.key",
        "-out",
        f"{PKI}/ca.crt",
    )
    os.chmod(f"{PKI}/ca.key", 0o600)
    return {"crt": read_file(f"{PKI}/ca.crt"), "key": read_file(f"{PKI}/ca.key")}


def ca_hash():
    import hashlib

    public = subprocess.run(
        f"openssl x509 -pubkey -noout -in {PKI}/ca.crt | openssl pkey -pubin -outform DER",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(public).hexdigest()


def write_ca(ca):
    write_file(f"{PKI}/ca.crt", ca["crt"])
    write_file(f"{PKI}/ca.key", ca["key"], 0o600)


def apiserver_cert(cluster_configuration, address):
    """The apiserver's serving certificate (1 year), signed by the cluster CA, with kubeadm's
    names: the service names, the node, its address and ClusterConfiguration's certSANs. An
    existing certificate is kept, as kubeadm does."""
    if os.path.exists(f"{PKI}/apiserver.crt"):
        print("[certs] Using existing apiserver certificate and key on disk")
        return
    import ipaddress

    sans = [*SERVICE_NAMES, node_name(), address, "10.96.0.1"]
    sans += [str(x) for x in (cluster_configuration.get("apiServer") or {}).get("certSANs") or []]
    endpoint = str(cluster_configuration.get("controlPlaneEndpoint") or "").rsplit(":", 1)[0]
    sans += [endpoint] if endpoint else []
    entries = []
    for name in dict.fromkeys(sans):
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*.-]+", name):
                fail(f"certSANs: {name!r} is not a DNS name or an IP address")
            entries.append(f"DNS:{name}")
    ext = f"{PKI}/apiserver.ext"
    write_file(ext, "subjectAltName=" + ",".join(entries) + "\n")
    openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        f"{PKI}/apiserver.key",
        "-out",
        f"{PKI}/apiserver.csr",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        f"{PKI}/apiserver.csr",
        "-CA",
        f"{PKI}/ca.crt",
        "-CAkey",
        f"{PKI}/ca.key",
        "-CAcreateserial",
        "-days",
        "365",
        "-extfile",
        ext,
        "-out",
        f"{PKI}/apiserver.crt",
    )
    os.chmod(f"{PKI}/apiserver.key", 0o600)
    for leftover in (ext, f"{PKI}/apiserver.csr"):
        os.unlink(leftover)
    print('[certs] Generating "apiserver" certificate and key')


def kubeadm_init(version, path):
    config = read_kubeadm_config(path, version)
    init = config.get("InitConfiguration", {})
    cluster = config.get("ClusterConfiguration", {})
    address = (init.get("localAPIEndpoint") or {}).get("advertiseAddress")
    if not address:
        fail(
            "SANDBOX STAND-IN kubeadm: InitConfiguration.localAPIEndpoint.advertiseAddress is "
            "not set (the stand-in does not guess it from the default route)"
        )
    address = ip_address(address, "advertiseAddress")
    endpoint = str(cluster.get("controlPlaneEndpoint") or f"{address}:{PORT}")
    preflight(f"{KUBE_DIR}/admin.conf")
    ca = make_ca()
    apiserver_cert(cluster, address)
    extra = {"ca": ca, "ca_hash": ca_hash(), "cluster_configuration": cluster}
    start_control_plane(version, address, cluster, endpoint=endpoint, extra=extra)
    write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(endpoint), 0o600)
    own = f"{address}:{PORT}"
    info = api(own, "POST", "/tokens", {})
    key = api(own, "POST", "/certificate-key", {})["certificate_key"]
    kubelet_setup(endpoint, ["control-plane"], init.get("nodeRegistration"))
    print("Your Kubernetes control-plane has initialized successfully! (SANDBOX STAND-IN)\n")
    print(
        f"  kubeadm join {endpoint} --token {info['token']} \\\n"
        f"\t--discovery-token-ca-cert-hash {info['ca_hash']} \\\n"
        f"\t--control-plane --certificate-key {key}"
    )


def kubeadm_join(version, path):
    config = read_kubeadm_config(path, version)
    join = config.get("JoinConfiguration") or fail(f"{path}: no JoinConfiguration")
    token = (join.get("discovery") or {}).get("bootstrapToken") or {}
    server = token.get("apiServerEndpoint") or fail("discovery.bootstrapToken.apiServerEndpoint")
    hashes = token.get("caCertHashes") or []
    control_plane = join.get("controlPlane")
    preflight(f"{KUBE_DIR}/kubelet.conf")
    registration = join.get("nodeRegistration") or {}
    if control_plane:
        given = (control_plane.get("localAPIEndpoint") or {}).get("advertiseAddress")
        address = ip_address(
            given or fail("controlPlane.localAPIEndpoint.advertiseAddress"), "advertiseAddress"
        )
    else:
        node_ip = kubelet_extra_args(registration).get("node-ip")
        address = ip_address(
            node_ip
            or fail("SANDBOX STAND-IN kubeadm: no node-ip in nodeRegistration.kubeletExtraArgs"),
            "node-ip",
        )
    role = "control-plane" if control_plane else "worker"
    joined = join_cluster(
        server,
        token.get("token"),
        role,
        address,
        ca_hash=hashes[0] if hashes else None,
        certificate_key=(control_plane or {}).get("certificateKey"),
    )
    if control_plane:
        write_ca(joined["ca"])
        apiserver_cert(joined.get("cluster_configuration") or {}, address)
        start_control_plane(
            version, address, joined.get("cluster_configuration") or {}, joined["initial_cluster"]
        )
        write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(server), 0o600)
        kubelet_setup(server, ["control-plane"], registration)
    else:
        kubelet_setup(server, [], registration)
    print("This node has joined the cluster (SANDBOX STAND-IN).")


def kubeadm_reset():
    """Stop the kubelet (it would restart the static pods), leave etcd (a control-plane
    node), stop the static pods, clean up."""
    stop_service("kubelet")
    etcd = static_pod_command("etcd")
    if etcd and service_pid("etcd"):
        client = next(a.split("=", 1)[1] for a in etcd if a.startswith("--advertise-client-urls="))
        address = re.sub(r"^http://|:\d+$", "", client).strip("[]")
        try:
            ControlPlane(address, Etcd([client])).remove_member({"peer": address})
        except EtcdUnavailable as e:
            print(f"[reset] could not remove the etcd member: {e}", file=sys.stderr)
    for pod in ("kube-apiserver", "etcd"):
        stop_service(pod)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(RUN_DIR, f"{pod}.manifest"))
    subprocess.run(["rm", "-rf", KUBE_DIR, "/var/lib/kubelet", KUBEADM_ETCD_DATA], check=True)
    print("[reset] SANDBOX STAND-IN: the node was reset")


def advertised_address(config):
    """InitConfiguration.localAPIEndpoint.advertiseAddress of a kubeadm --config file."""
    given = (config.get("InitConfiguration", {}).get("localAPIEndpoint") or {}).get(
        "advertiseAddress"
    )
    return ip_address(given or fail("advertiseAddress is not set"), "advertiseAddress")


def tool_kubeadm(version, argv):
    a = argv
    if a == ["version", "-o", "short"]:
        print(version)
        return
    if a == ["init", "--config=/etc/kubernetes/kubeadm.yaml", "--upload-certs"]:
        return kubeadm_init(version, f"{KUBE_DIR}/kubeadm.yaml")
    if len(a) == 2 and a[0] == "join" and a[1].startswith("--config="):
        return kubeadm_join(version, a[1].split("=", 1)[1])
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
        len(a) == 5
        and a[:4] == ["init", "phase", "certs", "apiserver"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        address = advertised_address(config)
        return apiserver_cert(config.get("ClusterConfiguration", {}), address)
    if (
        len(a) == 5
        and a[:4] == ["init", "phase", "control-plane", "apiserver"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        address = advertised_address(config)
        cluster = config.get("ClusterConfiguration", {})
        start_kube_apiserver(address, version, apiserver_extra_args(cluster))
        print('[control-plane] Creating static Pod manifest for "kube-apiserver"')
        return
    if (
        len(a) == 5
        and a[:4] == ["init", "phase", "upload-config", "kubeadm"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        api(
            admin_server(), "POST", "/cluster-configuration", config.get("ClusterConfiguration", {})
        )
        print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config"')
        return
    if a == ["reset", "-f"]:
        return kubeadm_reset()
    if len(a) == 4 and a[:2] == ["upgrade", "apply"] and a[3] == "-y":
        if a[2] != version:
            fail(f"the kubeadm binary is {version}; it cannot upgrade to {a[2]}")
        upgrade_control_plane(version)
        print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{version}".')
        return
    if a == ["upgrade", "node"]:
        if service_pid("kube-apiserver"):
            upgrade_control_plane(version)
        print("[upgrade] The configuration for this node was successfully updated!")
        return
    raise Refused


def upgrade_control_plane(version):
    """Restart kube-apiserver with this (new) binary and the same flags."""
    command = static_pod_command("kube-apiserver")
    flags = dict(f[2:].split("=", 1) for f in command if f.startswith("--") and "=" in f)
    address = flags.pop("advertise-address")
    flags.pop("etcd-servers", None)
    start_kube_apiserver(address, version, flags)


def tool_kube_apiserver(version, argv):
    flags = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    address = ip_address(flags.get("--advertise-address"), "--advertise-address")
    httpd = make_api_server(address, [flags["--etcd-servers"]])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd.serve_forever()


def tool_crictl(version, argv):
    """The kubelet's static pods as containers: `ps --name NAME -q` and `stop ID`. A stopped
    static pod is started again by the kubelet (keep_static_pods)."""
    if len(argv) == 4 and argv[0] == "ps" and argv[1] == "--name" and argv[3] == "-q":
        pid = service_pid(argv[2]) if static_pod_command(argv[2]) else None
        if pid:
            print(f"{argv[2]}-{pid}")
        return
    if len(argv) == 2 and argv[0] == "stop":
        name, _, pid = argv[1].rpartition("-")
        if not static_pod_command(name) or str(service_pid(name)) != pid:
            fail(f'container "{argv[1]}" not found')
        stop_service(name)
        print(argv[1])
        return
    raise Refused


# ---------------------------------------------------------------- k3s

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


# ---------------------------------------------------------------- k0s

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


# ---------------------------------------------------------------- etcdctl

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


TOOLS = {
    "kubeadm": tool_kubeadm,
    "kubelet": tool_kubelet,
    "kubectl": tool_kubectl,
    "k3s": tool_k3s,
    "k0s": tool_k0s,
    "systemctl": tool_systemctl,
    "kube-apiserver": tool_kube_apiserver,
    "etcdctl": tool_etcdctl,
    "crictl": tool_crictl,
    "helm": tool_helm,
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
