"""Where the workloads' pods run: the controllers and the scheduler of the API stand-in.

The pods are derived from what `kubectl apply` stored (Pods, Deployments, ReplicaSets,
StatefulSets, DaemonSets, Jobs) and the nodes, every time they are asked for, as the controllers
would converge: a Deployment's replicas are spread over the nodes that may take them (Ready,
schedulable, nodeSelector matched, NoSchedule/NoExecute taints tolerated), a DaemonSet has one
pod on every node that may take it, a Pod keeps its spec.nodeName. Pod names follow the
controllers' patterns (NAME-HASH-SUFFIX, NAME-N, NAME-SUFFIX) and are stable, so a kubelet
reports the status of the same pod each time.
"""

import hashlib

from .common import LIB

REPLICATED = ("Deployment", "ReplicaSet", "ReplicationController")
WORKLOADS = (*REPLICATED, "StatefulSet", "DaemonSet", "Job", "Pod")


def _suffix(*parts, size=5):
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:size]


def _labels(name, node):
    labels = {"kubernetes.io/hostname": name, **(node.get("labels") or {})}
    for role in node.get("roles") or []:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    return labels


def _tolerated(taint, tolerations):
    key_value, _, effect = taint.rpartition(":")
    if effect not in ("NoSchedule", "NoExecute"):
        return True
    key = key_value.split("=", 1)[0]
    for t in tolerations or []:
        if not isinstance(t, dict) or t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", key):
            return True
        if t.get("key") == key:
            return True
    return False


def _fits(spec, name, node, daemon):
    if not node.get("ready") or (node.get("unschedulable") and not daemon):
        return False
    labels = _labels(name, node)
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != str(v) for k, v in selector.items()):
        return False
    return all(_tolerated(t, spec.get("tolerations")) for t in node.get("taints") or [])


def _containers(spec):
    return [
        {"name": str(c.get("name") or ""), "image": str(c["image"])}
        for group in ("initContainers", "containers")
        for c in spec.get(group) or []
        if isinstance(c, dict) and c.get("image")
    ]


def _pod(namespace, name, node, spec, owner):
    return {
        "namespace": namespace,
        "name": name,
        "node": node,
        "containers": _containers(spec),
        "owner": owner,
    }


def placements(objects, nodes):
    """Every pod of the stored workloads: [{namespace, name, node ("" if no node may take
    it), containers: [{name, image}], owner: KIND/NAME}]."""
    import sys

    sys.path.insert(0, LIB)
    import yaml

    pods = []
    for obj in objects.values():
        kind = obj.get("kind")
        if kind not in WORKLOADS:
            continue
        try:
            body = yaml.safe_load(obj.get("manifest") or "") or {}
        except yaml.YAMLError:
            continue
        spec = body.get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            continue
        namespace, name = obj["namespace"], obj["name"]
        owner = f"{kind}/{name}"
        if kind == "Pod":
            node = str(spec.get("nodeName") or "")
            if not node:
                fitting = [n for n in sorted(nodes) if _fits(spec, n, nodes[n], False)]
                node = fitting[0] if fitting else ""
            pods.append(_pod(namespace, name, node, spec, owner))
            continue
        template = ((spec.get("template") or {}).get("spec")) or {}
        if not isinstance(template, dict):
            continue
        daemon = kind == "DaemonSet"
        fitting = [n for n in sorted(nodes) if _fits(template, n, nodes[n], daemon)]
        if daemon:
            for node in fitting:
                pods.append(_pod(namespace, f"{name}-{_suffix(name, node)}", node, template, owner))
            continue
        replicas = 1 if kind == "Job" else spec.get("replicas", 1)
        replicas = replicas if isinstance(replicas, int) and replicas >= 0 else 1
        revision = _suffix(obj.get("manifest") or "", size=10)
        for i in range(replicas):
            node = fitting[i % len(fitting)] if fitting else ""
            if kind == "StatefulSet":
                pod_name = f"{name}-{i}"
            elif kind == "Job":
                pod_name = f"{name}-{_suffix(name, str(i))}"
            else:
                pod_name = f"{name}-{revision}-{_suffix(name, str(i))}"
            pods.append(_pod(namespace, pod_name, node, template, owner))
    return sorted(pods, key=lambda p: (p["namespace"], p["name"]))
