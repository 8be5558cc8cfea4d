"""The real etcd underneath: a client of its v3 JSON gateway, and starting a member."""

import json
import os
import re
import time

from .common import LIB, fail, node_name
from .services import spawn_child

ETCD_BIN = os.path.join(LIB, "etcd")

ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380


class EtcdUnavailable(Exception):
    """No member answered (or the cluster has no quorum): nothing can be read or written."""


class Etcd:
    """A client of a real etcd cluster through its v3 JSON gateway (standard library only)."""

    def __init__(self, endpoints, timeout=3):
        self.endpoints = list(endpoints)
        self.timeout = timeout

    # What etcd answers while it elects a leader (a member just added or gone): worth
    # another try, as etcd's own clients and the API server's give one.
    TRANSIENT = ("timed out", "leader changed", "no leader")

    def call(self, path, body, patience=4):
        """One request, to the first member that answers. A request that met an election
        (a proposal dropped in flight, a leader changed) is tried again for up to `patience`
        seconds: an election takes one or two; a cluster without quorum must still answer
        within a client's timeout (kubectl's 10 s here), with etcd's error, not a hang-up.
        Every write sealer's stand-in makes is a compare-and-swap, so a retry that follows a
        write which did land fails its compare and the caller reads again."""
        deadline, delay = time.time() + patience, 0.1
        while True:
            try:
                return self._call_once(path, body)
            except EtcdUnavailable as e:
                transient = any(t in str(e) for t in self.TRANSIENT)
                if not transient or time.time() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

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
