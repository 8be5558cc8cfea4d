"""SANDBOX STAND-IN kubectl: get, apply, cordon, drain, label and taint against the API stand-in."""

import json
import os
import re
import sys
import time

from .api_client import admin_server, api
from .cmdline import Refused
from .common import LIB, load_yaml_documents


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
    if a[:2] in (["get", "pods"], ["get", "pod"], ["get", "po"]):
        return kubectl_get_pods(server, a[2:])
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


def kubectl_get_pods(server, args):
    """kubectl get pods [-A | -n NAMESPACE] [-o json|wide]: the pods the API server placed,
    with the statuses their kubelets reported."""
    namespace, output, every, i = "default", "", False, 0
    while i < len(args):
        if args[i] in ("-A", "--all-namespaces"):
            every, i = True, i + 1
        elif args[i] in ("-n", "--namespace") and i + 1 < len(args):
            namespace, i = args[i + 1], i + 2
        elif args[i] == "-o" and i + 1 < len(args) and args[i + 1] in ("json", "wide"):
            output, i = args[i + 1], i + 2
        else:
            raise Refused
    pods = [p for p in api(server, "GET", "/pods") if every or p["namespace"] == namespace]
    if output == "json":
        print(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod_json(p) for p in pods]})
        )
        return
    if not pods:
        where = "" if every else f" in {namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return
    head = f"{'NAMESPACE':<16}" if every else ""
    print(f"{head}{'NAME':<40}{'READY':<8}{'STATUS':<20}RESTARTS" + ("   NODE" if output else ""))
    for p in pods:
        statuses = p["status"].get("containerStatuses") or []
        ready = f"{sum(1 for c in statuses if c.get('ready'))}/{len(p['containers'])}"
        line = f"{p['namespace']:<16}" if every else ""
        line += f"{p['name']:<40}{ready:<8}{pod_phase(p['status']):<20}{0:<8}"
        print(line + (f"   {p['node'] or '<none>'}" if output else ""))


def pod_phase(status):
    """kubectl's STATUS column: a waiting container's reason, else the pod's phase."""
    for c in status.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason") or "Waiting"
    return status.get("phase") or "Unknown"


def pod_json(pod):
    owner_kind, _, owner_name = pod["owner"].partition("/")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod["name"],
            "namespace": pod["namespace"],
            "ownerReferences": [{"kind": owner_kind, "name": owner_name}],
        },
        "spec": {"nodeName": pod["node"], "containers": pod["containers"]},
        "status": pod["status"],
    }


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
