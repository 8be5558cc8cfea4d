"""End-to-end: container images collected at build time from a real source registry, served by
the cluster's own registry (Distribution) on its masters, pulled on every host with skopeo
while the source registry is down; HA, authentication, and a rebuilt image adding one image."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from cluster.image import sealer_home
from tests.e2e.conftest import IMAGES, OLD, Cluster, ip, ssh
from tests.helpers import sealer
from tests.source_registry import inspect_digest, oci_image, push, source_registry

PASSWORD = "s3cret-Registry-Pw"


def _seed(layout: Path, address: str) -> dict[str, str]:
    """Two images sharing a layer, pushed to the source registry: name -> digest."""
    shared = {"usr/share/base": os.urandom(4096)}
    oci_image(layout, "web", [shared, {"srv/web": os.urandom(2048)}])
    oci_image(layout, "db", [shared, {"srv/db": os.urandom(2048)}])
    push(layout, "web", address, "team/web:v1")
    push(layout, "db", address, "team/db:v2")
    return {
        name: inspect_digest(f"{address}/{name}", "--tls-verify=false")
        for name in ("team/web:v1", "team/db:v2")
    }


def _build(context: Path, address: str, tag: str, base: str) -> None:
    (context / "manifests").mkdir(parents=True, exist_ok=True)
    (context / "manifests" / "app.yaml").write_text(
        yaml.safe_dump(
            {
                "kind": "Deployment",
                "metadata": {"name": "app"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "web", "image": f"{address}/team/web:v1"},
                                {"name": "db", "image": f"{address}/team/db:v2"},
                            ]
                        }
                    }
                },
            }
        )
    )
    (context / "Kubefile").write_text(f"FROM {base}\nCOPY manifests manifests\n")
    result = sealer("build", "-t", tag, str(context), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "container images" in result.stdout


def _offline_image(tmp_path: Path, runtime: str, tag: str) -> tuple[dict[str, str], str]:
    """A ClusterImage of the runtime's sandbox image whose manifests name the two seeded
    images, built while the source registry runs (it is stopped when this returns).
    Returns (name -> source digest, the source registry's address)."""
    with source_registry(tmp_path / "source") as address:
        digests = _seed(tmp_path / "oci", address)
        _build(tmp_path / "ctx", address, tag, str(IMAGES / f"{runtime}-{OLD}"))
    return digests, address


def _pull_digest(n: int, name: str, *extra: str) -> str:
    """skopeo on sandbox host n, through sea.hub:5000 as the host resolves and trusts it."""
    result = ssh(
        n,
        f"skopeo inspect --format '{{{{.Digest}}}}' {' '.join(extra)} docker://sea.hub:5000/{name}",
        check=False,
    )
    assert result.returncode == 0, f"{ip(n)}: {result.stderr}"
    return result.stdout.strip()


def test_images_collected_at_build_are_served_by_the_cluster_with_the_source_down(hosts, tmp_path):
    digests, address = _offline_image(tmp_path, "kubernetes", "offline:v1")
    inspected = json.loads(sealer("image", "inspect", "offline:v1", "--json").stdout)
    listed = {c["name"]: c["digest"] for c in inspected["metadata"]["containerImages"]}
    base = json.loads((IMAGES / f"kubernetes-{OLD}" / "Metadata").read_text())
    inherited = {c["name"]: c["digest"] for c in base["containerImages"]}
    assert listed == {**inherited, **digests}  # the base's control-plane images, inherited

    # The source registry is stopped: only the cluster's registry has the images now.
    cluster = Cluster(tmp_path, "kubernetes")
    cluster.write([1], [2], image="offline:v1")
    plan = cluster.sealer("plan").stdout
    assert 'registry = "serves sea.hub:5000"' in plan and 'registry = "uses sea.hub:5000"' in plan
    cluster.apply()
    for n in (1, 2):
        for name, digest in digests.items():
            assert _pull_digest(n, name) == digest
        hosts_toml = ssh(n, "cat /etc/containerd/certs.d/sea.hub:5000/hosts.toml").stdout
        assert 'server = "https://sea.hub:5000"' in hosts_toml
        mirror = ssh(n, f"cat '/etc/containerd/certs.d/{address}/hosts.toml'").stdout
        assert '[host."https://sea.hub:5000"]' in mirror
    # TLS is real: without the distributed CA the registry's certificate is refused.
    refused = ssh(
        2, "skopeo inspect --cert-dir /nonexistent docker://sea.hub:5000/team/web:v1", check=False
    )
    assert refused.returncode != 0 and "certificate" in refused.stderr
    # The registry runs on the master only; the worker's rootfs does not carry registry/.
    assert ssh(1, "test -d /var/lib/sealer/data/e2e/registry/docker", check=False).returncode == 0
    assert ssh(2, "test -e /var/lib/sealer/data/e2e/registry", check=False).returncode != 0
    assert ssh(2, "test -e /var/lib/sealer/data/e2e/rootfs/registry", check=False).returncode != 0
    assert "No changes" in cluster.sealer("plan").stdout

    # A rebuilt image with one more container image: only the master's registry is served
    # again, and only the new image's blobs travel.
    with source_registry(tmp_path / "source") as address2:
        oci_image(tmp_path / "oci", "cache", [{"srv/cache": os.urandom(3000)}])
        push(tmp_path / "oci", "cache", address2, "team/cache:v3")
        new_digest = inspect_digest(f"{address2}/team/cache:v3", "--tls-verify=false")
        context = tmp_path / "ctx2"
        context.mkdir()
        (context / "imageList").write_text(f"# one more\n{address2}/team/cache:v3\n")
        (context / "Kubefile").write_text("FROM offline:v1\n")
        result = sealer("build", "-t", "offline:v2", str(context), timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 container images" in result.stdout  # the base's two are inherited
    cluster.write([1], [2], image="offline:v2")
    plan = cluster.sealer("plan").stdout
    assert f"serve_registry.{ip(1)}" in plan and f"serve_registry.{ip(2)}" not in plan
    before = ssh(1, "find /var/lib/sealer/data/e2e/registry/docker -name data | wc -l").stdout
    # Another machine (no CA here) must not re-sign the registry with a CA no host trusts.
    pki = sealer_home() / "pki" / "e2e"
    pki.rename(pki.with_name("moved"))
    refused = cluster.apply(expect=1)
    assert "its CA is not on this machine" in refused.stdout + refused.stderr
    pki.with_name("moved").rename(pki)
    cluster.apply()
    after = ssh(1, "find /var/lib/sealer/data/e2e/registry/docker -name data | wc -l").stdout
    assert int(after) == int(before) + 3  # the new image's layer, config and manifest
    assert _pull_digest(2, "team/cache:v3") == new_digest
    assert _pull_digest(2, "team/web:v1") == digests["team/web:v1"]  # still served

    # Back to the image without team/cache: the registry keeps it until a prune.
    cluster.write([1], [2], image="offline:v1")
    cluster.apply()
    assert _pull_digest(2, "team/cache:v3") == new_digest
    pruned = cluster.sealer("registry", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"{ip(1)}: 3 of {int(after)} blob files removed" in pruned.stdout
    gone = ssh(2, "skopeo inspect docker://sea.hub:5000/team/cache:v3", check=False)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr
    assert _pull_digest(2, "team/db:v2") == digests["team/db:v2"]
    assert "No changes" in cluster.sealer("plan").stdout


def test_ha_registry_survives_a_master_and_refuses_anonymous_pulls(hosts, tmp_path):
    digests, _ = _offline_image(tmp_path, "k3s", "offline-ha:v1")
    cluster = Cluster(tmp_path, "k3s")
    registry = {"localRegistry": {"ha": True, "username": "puller", "password": PASSWORD}}
    cluster.write([1, 2, 3], [4], registry=registry, image="offline-ha:v1")
    outputs = [cluster.sealer("plan").stdout, cluster.apply().stdout]
    shown = cluster.sealer("show").stdout
    assert f"registry:  served by {ip(1)}, {ip(2)}, {ip(3)}" in shown
    auth = "--authfile /var/lib/kubelet/config.json"

    # Anonymous pulls are refused; the configured user's pull works, on every host.
    anonymous = ssh(4, "skopeo inspect docker://sea.hub:5000/team/web:v1", check=False)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()
    for n in (1, 2, 3, 4):
        assert _pull_digest(n, "team/web:v1", auth) == digests["team/web:v1"]
    k3s = ssh(4, "cat /etc/rancher/k3s/registries.yaml").stdout
    assert "sea.hub:5000" in k3s and "ca_file" in k3s

    # Every master serves; with the first one's registry stopped, the worker still pulls.
    lines = ssh(4, "grep 'sealer: registry' /etc/hosts").stdout.split("\n")
    assert sorted(line.split()[0] for line in lines if line) == sorted(ip(n) for n in (1, 2, 3))
    ssh(1, "kill $(cat /var/lib/sealer/data/e2e/registry/registry.pid)")
    assert ssh(1, f"bash -c '(exec 3<>/dev/tcp/{ip(1)}/5000)'", check=False).returncode != 0
    assert _pull_digest(4, "team/db:v2", auth) == digests["team/db:v2"]

    # Drift sees the stopped registry.
    drift = cluster.sealer("plan", "--refresh-only", "--detailed-exitcode")
    assert drift.returncode == 2 and "registry_unreachable" in drift.stdout, drift.stdout
    outputs.append(drift.stdout)

    # The password is in no file under SEALER_HOME and in no output.
    for out in outputs:
        assert PASSWORD not in out
    for path in sealer_home().rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_insecure_registry_on_its_own_domain_and_port_for_k0s(hosts, tmp_path):
    digests, address = _offline_image(tmp_path, "k0s", "offline-k0s:v1")
    cluster = Cluster(tmp_path, "k0s")
    registry = {"localRegistry": {"domain": "hub.internal", "port": 5443, "insecure": True}}
    cluster.write([1], [2], registry=registry, image="offline-k0s:v1")
    cluster.apply()
    plain = "--tls-verify=false docker://hub.internal:5443/team/web:v1"
    digest = ssh(2, f"skopeo inspect --format '{{{{.Digest}}}}' {plain}").stdout.strip()
    assert digest == digests["team/web:v1"]
    # Plain HTTP: a client that insists on TLS is refused.
    tls = ssh(2, "skopeo inspect docker://hub.internal:5443/team/web:v1", check=False)
    assert tls.returncode != 0
    hosts_toml = ssh(2, "cat /etc/containerd/certs.d/hub.internal:5443/hosts.toml").stdout
    assert 'server = "http://hub.internal:5443"' in hosts_toml and "skip_verify" in hosts_toml
    drop_in = ssh(2, "cat /etc/k0s/containerd.d/sealer-registry.toml").stdout
    assert 'config_path = "/etc/containerd/certs.d"' in drop_in

    # Drift: a hosts line edited by hand is registry_config_changed; apply writes it back.
    ssh(2, "sed -i '/sealer: registry/d' /etc/hosts")
    drift = cluster.sealer("plan", "--refresh-only", "--detailed-exitcode")
    assert drift.returncode == 2 and "registry_config_changed" in drift.stdout, drift.stdout
    cluster.apply()
    assert ssh(2, "grep -c 'hub.internal' /etc/hosts").stdout.strip() == "1"

    # Destroy stops the registry and takes the lines away.
    cluster.sealer("destroy", "--auto-approve")
    assert ssh(1, "pgrep -f 'registry serve'", check=False).returncode != 0
    assert ssh(2, "grep -c 'sealer: registry' /etc/hosts", check=False).stdout.strip() == "0"
    assert ssh(2, "test -e /etc/containerd/certs.d/hub.internal:5443", check=False).returncode
    mirror = f"/etc/containerd/certs.d/{address}/hosts.toml"
    assert ssh(2, f"test -e '{mirror}'", check=False).returncode != 0


def test_an_app_image_brings_its_container_images_into_the_running_registry(hosts, tmp_path):
    with source_registry(tmp_path / "source") as address:
        digests = _seed(tmp_path / "oci", address)
        context = tmp_path / "app"
        (context / "web").mkdir(parents=True)
        (context / "web" / "deploy.yaml").write_text(
            f"kind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n"
            f"      containers:\n      - image: {address}/team/web:v1\n"
        )
        (context / "Kubefile").write_text('FROM scratch\nAPP web local://web\nLAUNCH ["web"]\n')
        built = sealer("build", "-t", "web-app:v1", str(context), timeout=300)
        assert built.returncode == 0, built.stdout + built.stderr
    # A cluster with a local registry and no container images of its own: it serves nothing
    # until the app image brings its own.
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2], registry={"localRegistry": {}})
    cluster.apply()
    assert ssh(2, "skopeo inspect docker://sea.hub:5000/team/web:v1", check=False).returncode
    ran = sealer("run", "web-app:v1", "-f", str(cluster.path), timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _pull_digest(2, "team/web:v1") == digests["team/web:v1"]
    # The app image's images are kept by a prune: its apps run on the cluster.
    pruned = cluster.sealer("registry", "prune")
    assert pruned.returncode == 0 and "0 of" in pruned.stdout, pruned.stdout + pruned.stderr
    assert _pull_digest(2, "team/web:v1") == digests["team/web:v1"]
