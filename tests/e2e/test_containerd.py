"""End-to-end: a real containerd on every kubernetes host pulls every pod's image through the
registry configuration sealer wrote (hosts.toml mirrors, the registry's CA), with the source
registries unreachable; a broken configuration shows as ErrImagePull with containerd's own
message, and as drift."""

from __future__ import annotations

import json
import os
import time

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import IMAGES, OLD, Cluster, ip, ssh
from tests.helpers import sealer
from tests.source_registry import inspect_digest, oci_image, push, source_registry

BASE = IMAGES / f"kubernetes-{OLD}"
KUBE_PROXY = f"registry.k8s.io/kube-proxy:{OLD}"  # in the base image's registry/, never pulled


def _base_digests() -> dict[str, str]:
    """source name -> digest of the control-plane images the base image carries."""
    metadata = json.loads((BASE / "Metadata").read_text())
    return {c["source"]: c["digest"] for c in metadata["containerImages"]}


def _workload(kind: str, name: str, image: str, **spec) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {"spec": {"containers": [{"name": name, "image": image}]}},
        },
    }


def _pods(master: int = 1) -> list[dict]:
    return json.loads(ssh(master, "kubectl get pods -A -o json").stdout)["items"]


def _wait_pods(done, timeout: float = 90) -> list[dict]:
    """The pods once done(pods) holds (the kubelets report every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = _pods()
        if done(pods) or time.monotonic() > deadline:
            return pods
        time.sleep(1)


def _waiting(pod: dict) -> list[dict]:
    return [
        c["state"]["waiting"]
        for c in pod["status"].get("containerStatuses") or []
        if "waiting" in c["state"]
    ]


def _containerd_images(n: int) -> dict[str, str]:
    """ref -> digest, as `ctr -n k8s.io images ls` lists them on host n."""
    lines = ssh(n, "ctr -n k8s.io images ls").stdout.splitlines()[1:]
    return {f[0]: f[2] for f in (line.split() for line in lines) if len(f) >= 3}


def test_every_pod_is_pulled_by_containerd_through_the_mirror_with_the_source_down(hosts, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    with source_registry(tmp_path / "source") as address:
        oci_image(tmp_path / "oci", "web", [{"srv/web": os.urandom(2048)}])
        push(tmp_path / "oci", "web", address, "team/web:v1")
        web = f"{address}/team/web:v1"
        web_digest = inspect_digest(web, "--tls-verify=false")
        manifests = [
            _workload("Deployment", "web", web, replicas=3),
            _workload("DaemonSet", "proxy", KUBE_PROXY),
        ]
        (context / "web.yaml").write_text(yaml.safe_dump_all(manifests))
        (context / "Kubefile").write_text(
            f'FROM {BASE}\nAPP web local://web.yaml\nLAUNCH ["web"]\n'
        )
        built = sealer("build", "-t", "pulled:v1", str(context), timeout=300)
        assert built.returncode == 0, built.stdout + built.stderr
    # The source registry is stopped, and registry.k8s.io is out of reach from here: only the
    # cluster's own registry (sea.hub:5000) can serve any image now.
    digests = {**_base_digests(), web: web_digest}
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2, 3], image="pulled:v1")
    cluster.apply()

    pods = _wait_pods(lambda pods: all(p["status"]["phase"] == "Running" for p in pods))
    assert {p["status"]["phase"] for p in pods} == {"Running"}, json.dumps(pods, indent=1)
    nodes = {ssh(n, "hostname").stdout.strip(): n for n in (1, 2, 3)}
    master = next(name for name, n in nodes.items() if n == 1)
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
    assert {("kube-system", f"etcd-{master}"), ("kube-system", f"kube-apiserver-{master}")} <= names
    assert sum(p["metadata"]["name"].startswith("web-") for p in pods) == 3
    for pod in pods:
        n = nodes[pod["spec"]["nodeName"]]
        have = _containerd_images(n)
        for container in pod["status"]["containerStatuses"]:
            ref = container["image"]  # every name here is fully qualified, as containerd lists it
            if ref.startswith("sea.hub:5000/"):  # kubeadm's: imageRepository sea.hub:5000
                source = next(s for s in digests if s.endswith("/" + ref.split("/", 1)[1]))
            else:
                source = ref
            assert have.get(ref) == digests[source], (ip(n), ref, have)
            assert container["imageID"].endswith(digests[source])
        assert "sea.hub:5000/pause:3.8" in have  # every pod's sandbox image
    # The original names were resolved through the hosts.toml mirrors sealer wrote.
    for n in (2, 3):
        have = _containerd_images(n)
        assert have[KUBE_PROXY] == digests[KUBE_PROXY]
        mirror = ssh(n, "cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml").stdout
        assert '[host."https://sea.hub:5000"]' in mirror
        config = ssh(n, "cat /etc/containerd/config.toml").stdout
        assert 'config_path = "/etc/containerd/certs.d"' in config
    listed = ssh(1, "kubectl get pods -A").stdout
    assert "Running" in listed and "ErrImagePull" not in listed
    drift = cluster.sealer("drift", "--json")
    assert drift.returncode == 0, drift.stdout + drift.stderr


def test_a_wrong_mirror_or_a_missing_ca_is_err_image_pull_and_drift(hosts, tmp_path):
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2, 3])
    cluster.apply()
    # Host 2: the registry.k8s.io mirror names a server nothing listens on. Host 3: the
    # registry's CA is gone from containerd's trust folder.
    ssh(
        2,
        'sed -i \'s|host."https://sea.hub:5000"|host."https://sea.hub:5999"|\' '
        "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
    )
    ssh(3, "rm /etc/containerd/certs.d/sea.hub:5000/ca.crt")
    daemonset = yaml.safe_dump(_workload("DaemonSet", "proxy", KUBE_PROXY))
    ssh(1, f"cat > /tmp/proxy.yaml <<'EOF'\n{daemonset}EOF\nkubectl apply -f /tmp/proxy.yaml")

    def failed(pods):
        return {
            p["spec"]["nodeName"]
            for p in pods
            if any(w["reason"] in ("ErrImagePull", "ImagePullBackOff") for w in _waiting(p))
        }

    nodes = {ssh(n, "hostname").stdout.strip(): n for n in (1, 2, 3)}
    pods = _wait_pods(lambda pods: {nodes[x] for x in failed(pods)} == {2, 3})
    assert {nodes[x] for x in failed(pods)} == {2, 3}, json.dumps(pods, indent=1)
    by_host = {
        nodes[p["spec"]["nodeName"]]: p for p in pods if p["metadata"]["name"].startswith("proxy-")
    }
    wrong_server = _waiting(by_host[2])[0]["message"]
    assert "sea.hub:5999" in wrong_server and "connection refused" in wrong_server, wrong_server
    no_ca = _waiting(by_host[3])[0]["message"]
    assert "ca.crt" in no_ca or "certificate" in no_ca, no_ca
    if 1 in by_host:  # the master's configuration is intact
        assert by_host[1]["status"]["phase"] == "Running"
    listed = ssh(1, "kubectl get pods -A").stdout
    assert "ErrImagePull" in listed or "ImagePullBackOff" in listed

    metrics = tmp_path / "drift.prom"
    drift = cluster.sealer("drift", "--json", "--prometheus", str(metrics))
    assert drift.returncode == 2, drift.stdout + drift.stderr
    findings = [f for f in json.loads(drift.stdout)["drift"] if f["kind"] == "image_pull_failed"]
    assert {f["host"] for f in findings} == {ip(2), ip(3)}
    for f in findings:
        assert f["actual"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
        assert f["actual"]["image"] in (KUBE_PROXY, "sea.hub:5000/pause:3.8")
        assert f["actual"]["message"]
    samples = {
        s.labels["kind"]: s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
        if s.name == "sealer_drift_findings"
    }
    assert samples["image_pull_failed"] == 2
