"""End-to-end: a control plane that survives losing its first master, on a real etcd cluster.

Every master runs a member of a real etcd (Debian's, carried in the sandbox images); the nodes
reach the API through the endpoint name (apiserver.cluster.local), never a master's address.
"""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from sandbox import hosts as sandbox
from tests.e2e.conftest import IMAGES, OLD, api, host, ip, ssh

ETCDCTL = str(IMAGES / ".vendor" / "etcd" / "etcdctl")  # the real etcdctl, on this machine
ENDPOINT = "apiserver.cluster.local"


def etcdctl(*args: str, members=(), timeout: float = 30) -> subprocess.CompletedProcess:
    endpoints = ",".join(f"http://{ip(n)}:2379" for n in members)
    return subprocess.run(
        [ETCDCTL, f"--endpoints={endpoints}", "--command-timeout=3s", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def member_names(n: int) -> set[str]:
    out = etcdctl("member", "list", "-w", "json", members=[n])
    assert out.returncode == 0, out.stderr
    return {m.get("name", "") for m in json.loads(out.stdout)["members"]}


def kubectl(runtime: str) -> str:
    return "k0s kubectl" if runtime == "k0s" else "kubectl"


def mapped(n: int) -> str:
    """Where the endpoint name resolves on host n (the host's own resolver)."""
    return ssh(n, f"getent hosts {ENDPOINT}").stdout.split()[0]


def test_removing_the_bootstrap_master_keeps_the_cluster(cluster):
    cluster.write([1, 2, 3], [4, 5])
    cluster.apply()
    assert member_names(1) == {"sandbox-1", "sandbox-2", "sandbox-3"}
    assert {mapped(n) for n in (4, 5)} == {ip(1)} and mapped(2) == ip(2)

    cluster.write([2, 3, 6], [4, 5])  # 6 joins, the workers move to 2, then 1 leaves
    plan = cluster.sealer("plan").stdout
    assert f'update_endpoint "{ip(4)}"' in plan and "the bootstrap role moves to" in plan
    result = cluster.apply()
    order = [line.split(":")[0] for line in result.stdout.splitlines() if "done after" in line]
    assert order.index(f"join_master.{ip(6)}") < order.index(f"update_endpoint.{ip(4)}")
    assert order.index(f"update_endpoint.{ip(5)}") < order.index(f"delete_master.{ip(1)}")

    assert cluster.state()["bootstrap_master"] == ip(2)
    # The real etcd: three healthy members, host 1 not among them.
    health = etcdctl("endpoint", "health", members=[2, 3, 6])
    assert health.returncode == 0 and health.stderr.count("is healthy") == 3, health.stderr
    assert member_names(2) == {"sandbox-2", "sandbox-3", "sandbox-6"}
    # Every remaining master answers the API; every worker reaches it through the name.
    for master in (2, 3, 6):
        assert "sandbox-4" in ssh(master, f"{kubectl(cluster.runtime)} get nodes").stdout
        assert mapped(master) == ip(master)
    for worker in (4, 5):
        assert mapped(worker) == ip(2)
        reach = ssh(
            worker,
            "python3 -c 'import urllib.request as u; "
            f'print(u.urlopen("http://{ENDPOINT}:6443/nodes", timeout=10).read().decode())\'',
        )
        assert "sandbox-5" in json.loads(reach.stdout)
    if cluster.runtime == "kubernetes":  # the kubelet's own kubeconfig names the endpoint
        out = ssh(4, "KUBECONFIG=/etc/kubernetes/kubelet.conf kubectl get nodes").stdout
        assert "sandbox-6" in out
    # The old bootstrap master is clean: no etcd, no endpoint line.
    assert "sandbox-standin/etcd" not in sandbox.run_in(host(1), ["ps", "-eo", "args"]).stdout
    assert ENDPOINT not in ssh(1, "cat /etc/hosts").stdout
    # And drift agrees.
    drift = cluster.sealer("drift", "--json")
    assert drift.returncode == 0, drift.stdout + drift.stderr


def test_two_of_three_members_lost_at_once_lose_quorum(hosts, tmp_path):
    """The negative control: what a plan that took two masters away at once would do. etcd
    then has no quorum and the API cannot write; sealer never plans that (planner tests)."""
    from tests.e2e.conftest import Cluster

    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1, 2, 3], [])
    cluster.apply()
    ssh(1, "kubectl label node sandbox-1 before=yes --overwrite")
    for n in (2, 3):  # two members vanish without leaving etcd (hosts gone at once)
        sandbox.run_in(
            host(n), ["sh", "-c", "systemctl stop kubelet; pkill -f [s]andbox-standin/etcd"]
        )
    health = etcdctl("endpoint", "health", members=[1])
    assert health.returncode != 0 and "unhealthy" in health.stderr + health.stdout
    write = ssh(1, "kubectl label node sandbox-1 after=yes --overwrite", check=False)
    assert write.returncode != 0 and "etcdserver" in write.stderr, write.stderr


def test_kubeadm_documents_are_merged_one_per_kind(hosts, tmp_path):
    from tests.e2e.conftest import Cluster

    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2])
    user = [
        {
            "apiVersion": "kubeadm.k8s.io/v1beta3",
            "kind": "ClusterConfiguration",
            "networking": {"podSubnet": "10.244.0.0/16"},
            "apiServer": {"extraArgs": {"v": "2"}, "certSANs": ["api.example.test"]},
        },
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "maxPods": 64,
        },
    ]
    with cluster.path.open("a") as f:
        f.write("---\n" + yaml.safe_dump_all(user, sort_keys=False))
    cluster.apply()
    docs = list(yaml.safe_load_all(ssh(1, "cat /etc/kubernetes/kubeadm.yaml").stdout))
    kinds = [d["kind"] for d in docs]
    assert (
        sorted(kinds)
        == sorted(set(kinds))
        == sorted(
            [
                "InitConfiguration",
                "ClusterConfiguration",
                "KubeletConfiguration",
                "KubeProxyConfiguration",
            ]
        )
    )
    by_kind = {d["kind"]: d for d in docs}
    config = by_kind["ClusterConfiguration"]
    assert config["networking"] == {  # the user's podSubnet over the image's defaults
        "dnsDomain": "cluster.local",
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/22",
    }
    assert config["apiServer"]["extraArgs"] == {"audit-log-maxage": "30", "v": "2"}
    assert config["controlPlaneEndpoint"] == f"{ENDPOINT}:6443"
    assert config["kubernetesVersion"] == OLD
    for name in (ENDPOINT, ip(1), "127.0.0.1", "api.example.test"):
        assert name in config["apiServer"]["certSANs"]
    assert by_kind["KubeletConfiguration"]["maxPods"] == 64
    assert by_kind["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert by_kind["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"] == ip(1)
    # The kubeadm stand-in refuses what kubeadm refuses: the file main produced before, with
    # a second ClusterConfiguration appended.
    twice = docs + [user[0]]
    ssh(2, f"cat > /tmp/twice.yaml <<'EOF'\n{yaml.safe_dump_all(twice)}EOF")
    refused = ssh(
        2,
        "cp /tmp/twice.yaml /etc/kubernetes/kubeadm.yaml && "
        "kubeadm init --config=/etc/kubernetes/kubeadm.yaml --upload-certs",
        check=False,
    )
    assert refused.returncode == 1 and "specified twice" in refused.stderr, refused.stderr
    assert api(1, "/nodes").keys() == {"sandbox-1", "sandbox-2"}
    manifest = ssh(1, "cat /etc/kubernetes/manifests/kube-apiserver.yaml").stdout
    assert "--v=2" in manifest and "--audit-log-maxage=30" in manifest

    # A change kubeadm can make: the masters are reconfigured (extraArgs, certSANs).
    user[0]["apiServer"] = {"extraArgs": {"v": "4"}, "certSANs": ["api2.example.test"]}
    base = cluster.path.read_text().split("---\n")[0]
    cluster.path.write_text(base + "---\n" + yaml.safe_dump_all(user, sort_keys=False))
    assert f'reconfigure_master "{ip(1)}"' in cluster.sealer("plan").stdout
    cluster.apply()
    assert "--v=4" in ssh(1, "cat /etc/kubernetes/manifests/kube-apiserver.yaml").stdout
    sans = ssh(1, "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt")
    assert "DNS:api2.example.test" in sans.stdout
    assert "No changes." in cluster.sealer("plan").stdout
    # One it cannot: the pod subnet of a running cluster.
    user[0]["networking"] = {"podSubnet": "10.32.0.0/12"}
    cluster.path.write_text(base + "---\n" + yaml.safe_dump_all(user, sort_keys=False))
    plan = cluster.sealer("plan")
    assert plan.returncode == 1
    assert "cannot change networking.podSubnet: '10.244.0.0/16' -> '10.32.0.0/12'" in plan.stderr


def test_cert_alt_names_reach_every_master_and_later_joins(hosts, tmp_path):
    from tests.e2e.conftest import Cluster, command_log

    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1, 2], [3])
    cluster.apply()

    def sans(n: int) -> str:
        return ssh(
            n, "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt"
        ).stdout

    assert f"DNS:{ENDPOINT}" in sans(1) and f"IP Address:{ip(2)}" in sans(2)
    assert "api.example.test" not in sans(1)
    # The discovery hash is the real CA's: kubeadm join checked it against ca.crt.
    result = cluster.sealer("cert", "--alt-names", "api.example.test,198.18.0.77")
    assert result.returncode == 0, result.stdout + result.stderr
    for master in (1, 2):
        assert "DNS:api.example.test" in sans(master) and "IP Address:198.18.0.77" in sans(master)
        assert any(e["argv"][:2] == ["crictl", "stop"] for e in command_log(master))
        assert "sandbox-3" in ssh(master, "kubectl get nodes").stdout  # it serves again
    assert cluster.state()["control_plane"]["cert_sans"] == "api.example.test,198.18.0.77"
    cluster.write([1, 2, 4], [3])  # a master joining later gets the names from the cluster
    cluster.apply()
    assert "DNS:api.example.test" in sans(4)
    metrics = tmp_path / "sealer.prom"
    drift = cluster.sealer("drift", "--prometheus", str(metrics))
    assert drift.returncode == 0, drift.stdout + drift.stderr
    expiry = [
        line
        for line in metrics.read_text().splitlines()
        if line.startswith("sealer_cert_expiry_seconds")
    ]
    assert len(expiry) == 3
    assert all(360 * 86400 < float(line.split()[-1]) <= 365 * 86400 for line in expiry)
    bad = cluster.sealer("cert", "--alt-names", "bad name;rm")
    assert bad.returncode == 1 and "--alt-names" in bad.stderr


def test_etcd_backup_then_destroyed_data_then_restore_brings_the_nodes_back(hosts, tmp_path):
    from tests.e2e.conftest import Cluster

    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1, 2, 3], [4])
    cluster.apply()
    before = set(api(1, "/nodes"))
    assert before == {"sandbox-1", "sandbox-2", "sandbox-3", "sandbox-4"}
    snapshot = tmp_path / "etcd.db"
    saved = cluster.sealer("etcd", "backup", "-o", str(snapshot))
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert snapshot.stat().st_mode & 0o777 == 0o600 and snapshot.stat().st_size > 1000

    # Every master loses its etcd data. All members stop before any restarts: a member
    # restarted empty while a peer still holds the data would get it back from that peer.
    for n in (1, 2, 3):
        ssh(
            n,
            "systemctl stop kubelet && crictl stop $(crictl ps --name kube-apiserver -q) && "
            "crictl stop $(crictl ps --name etcd -q) && rm -rf /var/lib/etcd",
        )
    for n in (1, 2, 3):
        ssh(n, "systemctl start kubelet")
    lost = ssh(1, "kubectl get nodes", check=False)
    assert lost.returncode != 0 or "sandbox-4" not in lost.stdout

    restored = cluster.sealer("etcd", "restore", str(snapshot), timeout=300)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    for master in (1, 2, 3):
        assert "sandbox-4" in ssh(master, "kubectl get nodes").stdout
    assert member_names(1) == {"sandbox-1", "sandbox-2", "sandbox-3"}
    health = etcdctl("endpoint", "health", members=[1, 2, 3])
    assert health.returncode == 0, health.stderr

    for n in (2, 3):  # without quorum, a backup is refused
        sandbox.run_in(
            host(n), ["sh", "-c", "systemctl stop kubelet; pkill -f [s]andbox-standin/etcd"]
        )
    refused = cluster.sealer("etcd", "backup", "-o", str(tmp_path / "late.db"))
    # the member left alone may still answer a health check for a moment (its leader lease
    # has not run out yet): 1 of 3 is as much a lost quorum as 0 of 3
    assert refused.returncode == 1
    assert re.search(r"etcd has no quorum \([01] of 3 members healthy", refused.stderr)
    assert not (tmp_path / "late.db").exists()
