"""End-to-end: the day-2 commands on sandbox hosts (issue 17): sealer's verbs on a commented
Clusterfile, --target, drain controls, state rm, output, --replace, import --discover."""

from __future__ import annotations

import json

from sandbox import hosts as sandbox
from tests.e2e.conftest import IMAGES, OLD, Cluster, ip, ssh
from tests.helpers import sealer

COMMENTED = """\
# The team's cluster: keep these comments.
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: e2e   # the state is named after it
spec:
  image: {image}
  ssh:
    user: root
    pk: {key}
  hosts:
    - ips: [{m1}]   # the first master
      roles: [master]
    # workers below
    - ips:
        - {w2}
        - {w3}
      roles: [node]
"""

BLOCKER = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {{app: web}}
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: web-1, uid: u1}}]
spec:
  nodeName: {node}
  containers: [{{name: web, image: nginx}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: default}}
spec:
  maxUnavailable: 0
  selector: {{matchLabels: {{app: web}}}}
"""


def _hostname(n: int) -> str:
    return ssh(n, "hostname").stdout.strip()


def test_verbs_target_drain_state_rm_and_output_on_a_commented_clusterfile(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.path.write_text(
        COMMENTED.format(
            image=IMAGES / f"k3s-{OLD}",
            key=sandbox.key_path(),
            m1=ip(1),
            w2=ip(2),
            w3=ip(3),
        )
    )
    cluster.apply()

    # scale-up: a new node joins; the file keeps its comments, and shows the diff first
    result = cluster.sealer("scale-up", "--nodes", ip(4), "--auto-approve")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"+        - {ip(4)}" in result.stdout  # the diff, in the file's own indentation
    text = cluster.path.read_text()
    for comment in ("# The team's cluster", "# the state is named after it", "# workers below"):
        assert comment in text
    assert ip(4) in cluster.state()["hosts"]

    # --target: a label change on host 2 and a new host 5; only host 5 is touched
    cluster.path.write_text(
        cluster.path.read_text().replace(
            "  hosts:\n", f"  hosts:\n    - ips: [{ip(5)}]\n      roles: [node]\n", 1
        )
    )
    cluster.path.write_text(
        cluster.path.read_text().replace(
            "      roles: [node]\n",
            "      roles: [node]\n      labels: {tier: web}\n",
        )
    )
    plan = cluster.sealer("plan", "--target", ip(5))
    assert plan.returncode == 0, plan.stderr
    assert f"join_worker.{ip(5)}" in plan.stdout
    assert "Warning: host targeting is in effect" in plan.stdout
    assert f"update_host.{ip(2)}" in plan.stdout.split("Left out")[1]  # listed as left out
    applied = cluster.apply("--target", ip(5))
    assert "applied changes may be incomplete" in applied.stdout
    state = cluster.state()
    assert ip(5) in state["hosts"] and state["hosts"][ip(2)]["labels"] == {}
    cluster.apply()  # the rest follows without --target
    assert cluster.state()["hosts"][ip(2)]["labels"] == {"tier": "web"}

    # a drain blocked by a PodDisruptionBudget times out naming the pod; the node stays
    manifest = BLOCKER.format(node=_hostname(4))
    ssh(
        1, f"cat > /tmp/blocker.yaml <<'EOF'\n{manifest}EOF\nk3s kubectl apply -f /tmp/blocker.yaml"
    )
    result = cluster.sealer("delete", "--nodes", ip(4), "--drain-timeout", "3s", "--auto-approve")
    assert result.returncode == 1
    assert f"failed:  delete_worker.{ip(4)}" in result.stderr
    assert 'pods/"web" -n "default": global timeout reached' in result.stderr
    assert ip(4) in cluster.state()["hosts"]
    assert ip(4) not in cluster.path.read_text()  # the approved edit stays
    assert "# workers below" in cluster.path.read_text()
    result = cluster.apply("--disable-eviction")
    assert "PodDisruptionBudgets are ignored" in result.stderr
    assert ip(4) not in cluster.state()["hosts"]

    # a host that burned: state rm forgets it without touching it; then the plan is clean
    sandbox.stop_sshd(sandbox.hosts()[4])  # host 5
    group = f"    - ips: [{ip(5)}]\n      roles: [node]\n      labels: {{tier: web}}\n"
    assert group in cluster.path.read_text()
    cluster.path.write_text(cluster.path.read_text().replace(group, ""))
    removed = cluster.sealer("state", "rm", ip(5))
    assert removed.returncode == 0, removed.stderr
    assert "kubectl delete node" in removed.stderr  # its node stays until deleted there
    ssh(1, f"k3s kubectl delete node {_hostname_of_stopped(5)}")
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes." in plan.stdout
    listed = cluster.sealer("state", "list").stdout
    assert ip(5) not in listed and ip(1) in listed

    outputs = json.loads(cluster.sealer("output", "--json").stdout)
    assert outputs["masters"] == [ip(1)] and outputs["workers"] == [ip(2), ip(3)]
    assert outputs["api_endpoint"] == "https://apiserver.cluster.local:6443"
    assert outputs["runtime"] == "k3s" and outputs["kubernetes_version"] == OLD
    assert outputs["kubeconfig"]["path"] == "/etc/rancher/k3s/k3s.yaml"


def _hostname_of_stopped(n: int) -> str:
    """The node name of a host whose sshd is down, read from inside the host."""
    found = sandbox.run_in(sandbox.hosts()[n - 1], ["hostname"]).stdout.strip()
    assert found
    return found


def test_replace_a_broken_worker_then_discover_the_cluster_into_a_new_state(hosts, tmp_path):
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2, 3], worker_extra={"labels": {"tier": "db"}})
    cluster.apply()
    ssh(3, "systemctl stop kubelet && rm -f /etc/kubernetes/kubelet.conf")  # broken by hand

    plan = cluster.sealer("plan", "--replace", ip(3))
    assert f"-/+ {ip(3)}" in plan.stdout
    assert plan.returncode == 0, plan.stderr
    result = cluster.apply("--replace", ip(3))
    assert "1 added, 0 changed, 1 destroyed" in result.stdout
    assert ssh(3, "systemctl is-active kubelet").stdout.strip() == "active"
    nodes = json.loads(ssh(1, "kubectl get nodes -o json").stdout)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(_hostname(n) for n in (1, 2, 3))

    # import --discover: a Clusterfile and a state made from what the master reports
    adopted = tmp_path / "adopted" / "Clusterfile"
    adopted.parent.mkdir()
    state = tmp_path / "adopted" / "state.json"
    found = sealer(
        "import",
        "--discover",
        "--master",
        ip(1),
        "--image",
        str(IMAGES / f"kubernetes-{OLD}"),
        "--pk",
        str(sandbox.key_path()),
        "--name",
        "e2e",
        "-f",
        str(adopted),
        "--state",
        str(state),
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert "1 master(s), 2 worker(s)" in found.stdout
    written = adopted.read_text()
    assert "tier: db" in written
    plan = sealer("plan", "-f", str(adopted), "--state", str(state), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes." in plan.stdout
    again = sealer("import", "--discover", "--master", ip(1), "--image", "x", "-f", str(adopted))
    assert again.returncode == 1 and "exists" in again.stderr
