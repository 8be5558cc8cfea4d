"""The sandbox API stand-in's controllers and scheduler (src/sandbox_standin/scheduler.py):
where a workload's pods go, as Kubernetes would place them. Pure: objects and nodes in memory."""

from __future__ import annotations

import sys

import yaml

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "examples" / "images" / "src"))
from sandbox_standin.scheduler import placements  # noqa: E402


def stored(kind, name, spec, namespace="default"):
    body = {"kind": kind, "metadata": {"name": name}, "spec": spec}
    return {
        f"{kind}/{namespace}/{name}": {
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "manifest": yaml.safe_dump(body),
        }
    }


def template(image, **spec):
    return {"template": {"spec": {"containers": [{"name": "c", "image": image}], **spec}}}


NODES = {
    "m1": {"ready": True, "roles": ["control-plane"], "labels": {},
           "taints": ["node-role.kubernetes.io/control-plane:NoSchedule"], "unschedulable": False},
    "w1": {"ready": True, "roles": [], "labels": {"pool": "a"}, "taints": [], "unschedulable": False},
    "w2": {"ready": True, "roles": [], "labels": {"pool": "b"}, "taints": [], "unschedulable": True},
    "w3": {"ready": False, "roles": [], "labels": {}, "taints": [], "unschedulable": False},
}  # fmt: skip


def where(pods):
    return sorted((p["name"].split("-")[0], p["node"]) for p in pods)


def test_replicas_spread_over_the_nodes_that_may_take_them():
    objects = stored("Deployment", "web", {"replicas": 3, **template("web:1")})
    pods = placements(objects, NODES)
    # m1 is tainted, w2 cordoned, w3 not ready: every replica goes to w1
    assert where(pods) == [("web", "w1")] * 3
    assert len({p["name"] for p in pods}) == 3
    assert pods[0]["containers"] == [{"name": "c", "image": "web:1"}]
    assert placements(objects, NODES) == pods  # stable names: the kubelet reports the same pods


def test_a_daemonset_tolerating_the_taint_runs_on_cordoned_nodes_too_but_not_unready_ones():
    tolerating = template("agent:1", tolerations=[{"operator": "Exists"}])
    pods = placements(stored("DaemonSet", "agent", tolerating), NODES)
    assert where(pods) == [("agent", "m1"), ("agent", "w1"), ("agent", "w2")]


def test_node_selector_and_a_pod_without_a_fitting_node():
    objects = stored(
        "StatefulSet", "db", {"replicas": 2, **template("db:1", nodeSelector={"pool": "b"})}
    )
    pods = placements(objects, NODES)
    assert [(p["name"], p["node"]) for p in pods] == [("db-0", ""), ("db-1", "")]  # w2 cordoned
    bare = placements(
        stored("Pod", "one", {"nodeName": "w3", "containers": [{"image": "x"}]}), NODES
    )
    assert [(p["name"], p["node"]) for p in bare] == [("one", "w3")]
