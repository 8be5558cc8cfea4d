"""The cluster's objects in etcd, one key per object, written with compare-and-swap."""

import json
import time

from .backoff import backoff
from .etcd import EtcdUnavailable

# The control plane's data in etcd, one key per object as a real API server keeps it: a write
# touches one node, and a thousand nodes joining at once do not contend for one document.
CLUSTER_KEY = "/sandbox/cluster"  # the cluster's settings: tokens, CA, endpoint, objects

NODES_PREFIX = "/sandbox/nodes/"  # one key per node

HISTORY_PREFIX = "/sandbox/history/"  # one key per event, in etcd's commit order

PODS_PREFIX = "/sandbox/pods/"  # per node: the statuses its kubelet last reported


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

    def pod_statuses(self):
        """node -> {namespace/name: status}, as each node's kubelet last reported them."""
        return {
            key[len(PODS_PREFIX) :]: json.loads(value)
            for key, value in self.etcd.prefixed(PODS_PREFIX)
        }

    def report_pods(self, name, statuses):
        """A kubelet's report replaces its node's last one (only that kubelet writes it)."""
        self.etcd.put_all({PODS_PREFIX + name: json.dumps(statuses)})

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
