"""SANDBOX STAND-IN kubeadm: init, join, reset and upgrade, with kubeadm's config files."""

import contextlib
import json
import os
import re
import subprocess
import sys

from . import containerd
from .api_client import admin_kubeconfig, admin_server, api, join_cluster
from .apiserver import PORT, ControlPlane, init_cluster_data, wait_for_api
from .cmdline import Refused
from .common import BIN, RUN_DIR, fail, ip_address, load_yaml_documents, node_name, write_file
from .etcd import ETCD_CLIENT_PORT, Etcd, EtcdUnavailable, etcd_command, etcd_url, wait_for_etcd
from .kubeadm_images import DEFAULT_IMAGE_REPOSITORY, image_tags, minor_of
from .kubelet import KUBE_DIR, KUBEADM_FLAGS, static_pod, static_pod_command, static_pod_image
from .pki import apiserver_cert, ca_hash, make_ca, write_ca
from .services import service_pid, stop_service
from .systemctl import tool_systemctl

KUBEADM_ETCD_DATA = "/var/lib/etcd"

KUBEADM_GROUP = "kubeadm.k8s.io"

# The kubeadm API versions each minor reads (kubeadm's scheme, cmd/kubeadm/app/apis/kubeadm):
# v1beta2 until 1.25, v1beta3 from 1.22, v1beta4 from 1.31.
KUBEADM_API_VERSIONS = (("v1beta2", 15, 25), ("v1beta3", 22, 99), ("v1beta4", 31, 99))

COMPONENT_API_VERSIONS = {
    "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
    "KubeProxyConfiguration": "kubeproxy.config.k8s.io/v1alpha1",
}

KUBEADM_KINDS = ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration")


def control_plane_images(version, cluster_configuration):
    """The images of the static pods kubeadm writes (and the sandbox's), as kubeadm names
    them: ClusterConfiguration.imageRepository (registry.k8s.io by default)/NAME:TAG."""
    repository = cluster_configuration.get("imageRepository") or DEFAULT_IMAGE_REPOSITORY
    repository = str(repository).rstrip("/")
    tags = image_tags(version)
    return {
        name: f"{repository}/{name}:{tags[name]}" for name in ("etcd", "kube-apiserver", "pause")
    }


def pull_images(images):
    """kubeadm's preflight pull: the images containerd lacks, through the CRI's registry
    configuration; a failure stops kubeadm, naming the image and containerd's message."""
    print("[preflight] Pulling images required for setting up a Kubernetes cluster")
    have = containerd.images()
    for image in images:
        if containerd.normalize(image) in have:
            continue
        digest, message = containerd.pull(image)
        if not digest:
            fail(
                f"[preflight] Some fatal errors occurred:\n\t[ERROR ImagePull]: failed to pull "
                f"image {image}: output: {message}, error: exit status 1"
            )


def read_kubeadm_config(path, version):
    """The documents of a kubeadm --config file, by kind, checked as kubeadm loads them
    (cmd/kubeadm/app/util/config and util/marshal.go):
    - each document needs apiVersion and kind ("kind and apiVersion is mandatory");
    - one document per GroupVersionKind ("... is specified twice in YAML file"), and one per
      kind across versions;
    - a kubeadm apiVersion this kubeadm does not read is an error (no kind registered);
    - a document of an unknown kind is ignored with a warning;
    - kubernetesVersion: not older than one minor below kubeadm, not newer than kubeadm."""
    kubeadm_minor = minor_of(version)
    readable = [
        f"{KUBEADM_GROUP}/{v}"
        for v, first, last in KUBEADM_API_VERSIONS
        if first <= kubeadm_minor <= last
    ]
    by_kind = {}
    for doc in load_yaml_documents(path, "kubeadm configuration"):
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            fail(
                f"{path}: invalid configuration: kind and apiVersion is mandatory information "
                "that must be specified"
            )
        kind, api_version = doc["kind"], doc["apiVersion"]
        if kind in by_kind:
            fail(
                f"{path}: invalid configuration: GroupVersionKind {api_version}, Kind={kind} is "
                "specified twice in YAML file"
            )
        if kind in KUBEADM_KINDS:
            if api_version not in readable:
                fail(
                    f'{path}: no kind "{kind}" is registered for version "{api_version}" '
                    f"(this kubeadm reads {', '.join(readable)})"
                )
        elif kind in COMPONENT_API_VERSIONS:
            if api_version != COMPONENT_API_VERSIONS[kind]:
                fail(f'{path}: no kind "{kind}" is registered for version "{api_version}"')
        else:
            print(
                f"W0000 [config] WARNING: Ignored YAML document with GroupVersionKind "
                f"{api_version}, Kind={kind}",
                file=sys.stderr,
            )
            continue
        by_kind[kind] = doc
    wanted = by_kind.get("ClusterConfiguration", {}).get("kubernetesVersion")
    if wanted is not None:
        wanted_minor = minor_of(wanted)
        if wanted_minor is None:
            fail(f"{path}: kubernetesVersion {wanted!r} is not a valid version")
        if wanted_minor < kubeadm_minor - 1:
            fail(
                f"this version of kubeadm only supports deploying clusters with the control "
                f"plane version >= 1.{kubeadm_minor - 1}.0. Current version: {wanted}"
            )
        if minor_of(wanted) > kubeadm_minor or (wanted_minor == kubeadm_minor and wanted > version):
            fail(f"the specified version to install ({wanted}) is newer than kubeadm ({version})")
    return by_kind


def kubelet_extra_args(registration):
    """nodeRegistration.kubeletExtraArgs: a map (v1beta3) or name/value pairs (v1beta4)."""
    args = (registration or {}).get("kubeletExtraArgs") or {}
    if isinstance(args, list):
        return {a.get("name"): a.get("value") for a in args if isinstance(a, dict)}
    return args


def write_kubeadm_flags(registration):
    """What kubeadm hands the kubelet through its systemd drop-in (kubeadm-flags.env)."""
    args = kubelet_extra_args(registration)
    flags = " ".join(f"--{k}={v}" for k, v in sorted(args.items()))
    write_file(KUBEADM_FLAGS, f'KUBELET_KUBEADM_ARGS="{flags}"\n')


def start_control_plane(
    version, address, cluster_configuration, initial_cluster=None, endpoint=None, extra=None
):
    """kubeadm's stacked etcd member and kube-apiserver, as static pods. The first
    control-plane node (no initial_cluster) also writes the cluster's data."""
    images = control_plane_images(version, cluster_configuration)
    pull_images(images.values())
    etcd = etcd_command(node_name(), address, KUBEADM_ETCD_DATA, initial_cluster)
    static_pod("etcd", etcd, image=images["etcd"])
    wait_for_etcd(etcd_url(address, ETCD_CLIENT_PORT))
    if initial_cluster is None:
        init_cluster_data(address, "kubernetes", endpoint, extra=extra)
    extra_args = apiserver_extra_args(cluster_configuration)
    start_kube_apiserver(address, version, extra_args, images["kube-apiserver"])


def apiserver_extra_args(cluster_configuration):
    """ClusterConfiguration.apiServer.extraArgs: a map (v1beta3) or name/value pairs."""
    return kubelet_extra_args(
        {"kubeletExtraArgs": (cluster_configuration.get("apiServer") or {}).get("extraArgs")}
    )


def start_kube_apiserver(address, version, extra_args, image):
    """kubeadm's kube-apiserver static pod: the image's binary installed now (an upgrade's new
    one), kubeadm's flags, then ClusterConfiguration's extraArgs."""
    static_pod(
        "kube-apiserver",
        [
            os.path.join(BIN, "kube-apiserver"),
            f"--advertise-address={address}",
            f"--etcd-servers={etcd_url(address, ETCD_CLIENT_PORT)}",
            *(f"--{k}={v}" for k, v in sorted((extra_args or {}).items())),
        ],
        version,
        image,
    )
    wait_for_api(f"{address}:{PORT}")


def kubelet_setup(server, roles, registration):
    write_file(f"{KUBE_DIR}/kubelet.conf", admin_kubeconfig(server), 0o600)
    write_file("/var/lib/kubelet/config.yaml", json.dumps({"roles": roles}))
    write_kubeadm_flags(registration)
    tool_systemctl(None, ["restart", "kubelet"])


def preflight(path):
    if os.path.exists(path):
        fail(f"[preflight] {path} already exists", 1)


def kubeadm_init(version, path):
    config = read_kubeadm_config(path, version)
    init = config.get("InitConfiguration", {})
    cluster = config.get("ClusterConfiguration", {})
    address = (init.get("localAPIEndpoint") or {}).get("advertiseAddress")
    if not address:
        fail(
            "SANDBOX STAND-IN kubeadm: InitConfiguration.localAPIEndpoint.advertiseAddress is "
            "not set (the stand-in does not guess it from the default route)"
        )
    address = ip_address(address, "advertiseAddress")
    endpoint = str(cluster.get("controlPlaneEndpoint") or f"{address}:{PORT}")
    preflight(f"{KUBE_DIR}/admin.conf")
    ca = make_ca()
    apiserver_cert(cluster, address)
    extra = {"ca": ca, "ca_hash": ca_hash(), "cluster_configuration": cluster}
    start_control_plane(version, address, cluster, endpoint=endpoint, extra=extra)
    write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(endpoint), 0o600)
    own = f"{address}:{PORT}"
    info = api(own, "POST", "/tokens", {})
    key = api(own, "POST", "/certificate-key", {})["certificate_key"]
    kubelet_setup(endpoint, ["control-plane"], init.get("nodeRegistration"))
    print("Your Kubernetes control-plane has initialized successfully! (SANDBOX STAND-IN)\n")
    print(
        f"  kubeadm join {endpoint} --token {info['token']} \\\n"
        f"\t--discovery-token-ca-cert-hash {info['ca_hash']} \\\n"
        f"\t--control-plane --certificate-key {key}"
    )


def kubeadm_join(version, path):
    config = read_kubeadm_config(path, version)
    join = config.get("JoinConfiguration") or fail(f"{path}: no JoinConfiguration")
    token = (join.get("discovery") or {}).get("bootstrapToken") or {}
    server = token.get("apiServerEndpoint") or fail("discovery.bootstrapToken.apiServerEndpoint")
    hashes = token.get("caCertHashes") or []
    control_plane = join.get("controlPlane")
    preflight(f"{KUBE_DIR}/kubelet.conf")
    registration = join.get("nodeRegistration") or {}
    if control_plane:
        given = (control_plane.get("localAPIEndpoint") or {}).get("advertiseAddress")
        address = ip_address(
            given or fail("controlPlane.localAPIEndpoint.advertiseAddress"), "advertiseAddress"
        )
    else:
        node_ip = kubelet_extra_args(registration).get("node-ip")
        address = ip_address(
            node_ip
            or fail("SANDBOX STAND-IN kubeadm: no node-ip in nodeRegistration.kubeletExtraArgs"),
            "node-ip",
        )
    role = "control-plane" if control_plane else "worker"
    joined = join_cluster(
        server,
        token.get("token"),
        role,
        address,
        ca_hash=hashes[0] if hashes else None,
        certificate_key=(control_plane or {}).get("certificateKey"),
    )
    if control_plane:
        write_ca(joined["ca"])
        apiserver_cert(joined.get("cluster_configuration") or {}, address)
        start_control_plane(
            version, address, joined.get("cluster_configuration") or {}, joined["initial_cluster"]
        )
        write_file(f"{KUBE_DIR}/admin.conf", admin_kubeconfig(server), 0o600)
        kubelet_setup(server, ["control-plane"], registration)
    else:
        kubelet_setup(server, [], registration)
    print("This node has joined the cluster (SANDBOX STAND-IN).")


def kubeadm_reset():
    """Stop the kubelet (it would restart the static pods), leave etcd (a control-plane
    node), stop the static pods, clean up."""
    stop_service("kubelet")
    etcd = static_pod_command("etcd")
    if etcd and service_pid("etcd"):
        client = next(a.split("=", 1)[1] for a in etcd if a.startswith("--advertise-client-urls="))
        address = re.sub(r"^http://|:\d+$", "", client).strip("[]")
        try:
            ControlPlane(address, Etcd([client])).remove_member({"peer": address})
        except EtcdUnavailable as e:
            print(f"[reset] could not remove the etcd member: {e}", file=sys.stderr)
    for pod in ("kube-apiserver", "etcd"):
        stop_service(pod)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(RUN_DIR, f"{pod}.manifest"))
    subprocess.run(["rm", "-rf", KUBE_DIR, "/var/lib/kubelet", KUBEADM_ETCD_DATA], check=True)
    print("[reset] SANDBOX STAND-IN: the node was reset")


def advertised_address(config):
    """InitConfiguration.localAPIEndpoint.advertiseAddress of a kubeadm --config file."""
    given = (config.get("InitConfiguration", {}).get("localAPIEndpoint") or {}).get(
        "advertiseAddress"
    )
    return ip_address(given or fail("advertiseAddress is not set"), "advertiseAddress")


def tool_kubeadm(version, argv):
    a = argv
    if a == ["version", "-o", "short"]:
        print(version)
        return
    if a == ["init", "--config=/etc/kubernetes/kubeadm.yaml", "--upload-certs"]:
        return kubeadm_init(version, f"{KUBE_DIR}/kubeadm.yaml")
    if len(a) == 2 and a[0] == "join" and a[1].startswith("--config="):
        return kubeadm_join(version, a[1].split("=", 1)[1])
    if a == ["token", "create", "--print-join-command"]:
        info = api(admin_server(), "POST", "/tokens", {})
        print(
            f"kubeadm join {info['server']} --token {info['token']} "
            f"--discovery-token-ca-cert-hash {info['ca_hash']} "
        )
        return
    if a == ["init", "phase", "upload-certs", "--upload-certs"]:
        key = api(admin_server(), "POST", "/certificate-key", {})["certificate_key"]
        print(
            f'[upload-certs] Storing the certificates in Secret "kubeadm-certs"\n'
            f"[upload-certs] Using certificate key:\n{key}"
        )
        return
    if (
        len(a) == 5
        and a[:4] == ["init", "phase", "certs", "apiserver"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        address = advertised_address(config)
        return apiserver_cert(config.get("ClusterConfiguration", {}), address)
    if (
        len(a) == 5
        and a[:4] == ["init", "phase", "control-plane", "apiserver"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        address = advertised_address(config)
        cluster = config.get("ClusterConfiguration", {})
        image = control_plane_images(version, cluster)["kube-apiserver"]
        pull_images([image])
        start_kube_apiserver(address, version, apiserver_extra_args(cluster), image)
        print('[control-plane] Creating static Pod manifest for "kube-apiserver"')
        return
    if (
        len(a) == 5
        and a[:4] == ["init", "phase", "upload-config", "kubeadm"]
        and a[4].startswith("--config=")
    ):
        config = read_kubeadm_config(a[4].split("=", 1)[1], version)
        api(
            admin_server(), "POST", "/cluster-configuration", config.get("ClusterConfiguration", {})
        )
        print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config"')
        return
    if a == ["reset", "-f"]:
        return kubeadm_reset()
    if len(a) == 4 and a[:2] == ["upgrade", "apply"] and a[3] == "-y":
        if a[2] != version:
            fail(f"the kubeadm binary is {version}; it cannot upgrade to {a[2]}")
        upgrade_control_plane(version)
        print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{version}".')
        return
    if a == ["upgrade", "node"]:
        if service_pid("kube-apiserver"):
            upgrade_control_plane(version)
        print("[upgrade] The configuration for this node was successfully updated!")
        return
    raise Refused


def upgrade_control_plane(version):
    """Restart kube-apiserver with this (new) binary and the same flags."""
    command = static_pod_command("kube-apiserver")
    flags = dict(f[2:].split("=", 1) for f in command if f.startswith("--") and "=" in f)
    address = flags.pop("advertise-address")
    flags.pop("etcd-servers", None)
    old = static_pod_image("kube-apiserver")  # REPOSITORY/kube-apiserver:OLD
    image = f"{old.rsplit(':', 1)[0]}:{version}" if old else ""
    if image:
        pull_images([image])
    start_kube_apiserver(address, version, flags, image)
