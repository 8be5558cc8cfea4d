"""kubeadm's configuration: the image's default documents with the Clusterfile's merged over
them, one document per kind, in the apiVersion the Kubernetes version reads.

Sealer keeps an image's defaults in its rootfs (`etc/kubeadm.yml`) and merges the Clusterfile's
kubeadm documents over them; kubeadm itself refuses a file that holds two documents of one
kind (`SplitYAMLDocuments`: "GroupVersionKind ... is specified twice"). Pure: no I/O but
reading the defaults file it is given.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import yaml

from cluster.maps import merged
from cluster.names import dns_name_problem

DEFAULT_ENDPOINT = "apiserver.cluster.local"
API_PORT = 6443
DEFAULTS_FILES = ("etc/kubeadm.yml", "etc/kubeadm.yaml")  # sealer's name first

KUBEADM_GROUP = "kubeadm.k8s.io"
# Which kubeadm API versions a Kubernetes minor reads: (version, first minor, last minor).
# v1beta2 was removed in 1.26, v1beta3 came in 1.22, v1beta4 in 1.31.
KUBEADM_API_VERSIONS = (("v1beta2", 15, 25), ("v1beta3", 22, 99), ("v1beta4", 31, 99))
OTHER_API_VERSIONS = {
    "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
    "KubeProxyConfiguration": "kubeproxy.config.k8s.io/v1alpha1",
}
INIT_KINDS = (
    "InitConfiguration",
    "ClusterConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
)
# Fields of a running cluster that kubeadm cannot change: recorded at init (fixed_settings),
# a plan that changes them is refused.
IMMUTABLE = (
    ("networking", "podSubnet"),
    ("networking", "serviceSubnet"),
    ("networking", "dnsDomain"),
    ("etcd",),
    ("clusterName",),
)


class KubeadmConfigError(ValueError):
    """A kubeadm document this Kubernetes version would refuse; the message says why."""


def minor(version: str) -> int:
    m = re.match(r"v?1\.(\d+)\.", version)
    if not m:
        raise KubeadmConfigError(f"version {version!r} is not a Kubernetes version (v1.X.Y)")
    return int(m[1])


def kubeadm_api_version(version: str) -> str:
    """The newest kubeadm API that this Kubernetes version reads."""
    n = minor(version)
    readable = [v for v, first, last in KUBEADM_API_VERSIONS if first <= n <= last]
    return f"{KUBEADM_GROUP}/{readable[-1]}"


def readable_api_versions(kind: str, version: str) -> list[str]:
    if kind in OTHER_API_VERSIONS:
        return [OTHER_API_VERSIONS[kind]]
    n = minor(version)
    return [f"{KUBEADM_GROUP}/{v}" for v, first, last in KUBEADM_API_VERSIONS if first <= n <= last]


def document_problems(documents: list[dict], version: str) -> list[tuple[str, str]]:
    """What kubeadm at `version` would refuse in the Clusterfile's documents, as (field,
    problem): one document per kind, an apiVersion it reads, the image's kubernetesVersion."""
    problems, seen = [], set()
    for doc in documents:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        if kind in seen:
            problems.append(("kind", f"{kind} is given twice; kubeadm reads one document per kind"))
        seen.add(kind)
        readable = readable_api_versions(kind, version)
        if api not in readable:
            problems.append(
                (
                    "apiVersion",
                    f"{kind}: apiVersion {api!r} is not read by Kubernetes {version} "
                    f"(it reads {', '.join(readable)})",
                )
            )
        endpoint = str(doc.get("controlPlaneEndpoint") or "")
        name, _, port = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "6443")
        named = kind == "ClusterConfiguration" and endpoint and not _is_address(name)
        if named and (dns_name_problem(name) or not port.isdigit()):
            problems.append(
                (
                    "controlPlaneEndpoint",
                    f"{endpoint!r}: the endpoint must be NAME[:PORT] with a DNS name "
                    f"(lowercase letters, digits, '-' and '.')",
                )
            )
        wanted = doc.get("kubernetesVersion")
        if kind == "ClusterConfiguration" and wanted not in (None, version):
            problems.append(
                (
                    "kubernetesVersion",
                    f"ClusterConfiguration: kubernetesVersion {wanted!r} differs from the "
                    f"image's {version}; the image decides the version (remove the field)",
                )
            )
    return problems


def _is_address(name: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|\[.*\]", name))


def image_defaults(rootfs: str | Path) -> list[dict]:
    """The image's default kubeadm documents (none if the image carries no such file)."""
    for name in DEFAULTS_FILES:
        path = Path(rootfs) / name
        if path.is_file():
            text = path.read_text()
            return [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]
    return []


def merged_documents(defaults: list[dict], user: list[dict], version: str) -> dict[str, dict]:
    """One document per kind: the user's merged over the image's, in the version's apiVersion."""
    by_kind: dict[str, dict] = {}
    for doc in [*defaults, *user]:
        kind = doc["kind"]
        by_kind[kind] = merged(by_kind.get(kind, {}), doc)
    api = kubeadm_api_version(version)
    for kind, doc in by_kind.items():
        doc["apiVersion"] = OTHER_API_VERSIONS.get(kind, api)
    return by_kind


def default_image_repository(documents: dict[str, dict], repository: str, version: str) -> None:
    """As sealer does (kubeadm_config.go, NewKubeadmConfig): kubeadm pulls the control plane's
    images, CoreDNS's under coredns/, from the cluster's registry, unless the documents name
    another repository."""
    cluster = documents.setdefault(
        "ClusterConfiguration",
        {"apiVersion": kubeadm_api_version(version), "kind": "ClusterConfiguration"},
    )
    cluster.setdefault("imageRepository", repository)
    dns = cluster.setdefault("dns", {})
    if isinstance(dns, dict):
        dns.setdefault("imageRepository", f"{repository}/coredns")


def endpoint_of(documents: dict[str, dict]) -> tuple[str, int]:
    """The control-plane endpoint name and port: the user's controlPlaneEndpoint, when it is
    a name, or sealer's apiserver.cluster.local:6443."""
    given = str(documents.get("ClusterConfiguration", {}).get("controlPlaneEndpoint") or "")
    name, _, port = given.partition(":")
    if name and not _is_address(name):
        return name, int(port) if port.isdigit() else API_PORT
    return DEFAULT_ENDPOINT, API_PORT


def with_sans(documents: dict[str, dict], sans: list[str]) -> dict[str, dict]:
    """The documents with more names in ClusterConfiguration.apiServer.certSANs."""
    docs = copy.deepcopy(documents)
    cluster = docs.setdefault("ClusterConfiguration", {"kind": "ClusterConfiguration"})
    known = list(cluster.setdefault("apiServer", {}).get("certSANs") or [])
    cluster["apiServer"]["certSANs"] = list(dict.fromkeys([*known, *sans]))
    return docs


def cert_sans(documents: dict[str, dict], endpoint: str, masters: list[str]) -> list[str]:
    """The apiserver certificate's names: endpoint, every master, loopback, the user's."""
    extra = documents.get("ClusterConfiguration", {}).get("apiServer", {}).get("certSANs") or []
    return list(dict.fromkeys([endpoint, *masters, "127.0.0.1", *map(str, extra)]))


def init_config(
    documents: dict[str, dict],
    *,
    version: str,
    node_ip: str,
    masters: list[str],
) -> str:
    """The `kubeadm init --config` file for the first master."""
    docs = copy.deepcopy(documents)
    endpoint, port = endpoint_of(docs)
    init = docs.setdefault("InitConfiguration", {"kind": "InitConfiguration"})
    init["apiVersion"] = kubeadm_api_version(version)
    init.setdefault("localAPIEndpoint", {})["advertiseAddress"] = node_ip
    init["localAPIEndpoint"].setdefault("bindPort", port)
    _node_ip(init.setdefault("nodeRegistration", {}), node_ip)
    cluster = docs.setdefault("ClusterConfiguration", {"kind": "ClusterConfiguration"})
    cluster["apiVersion"] = kubeadm_api_version(version)
    cluster["kubernetesVersion"] = version
    cluster["controlPlaneEndpoint"] = f"{endpoint}:{port}"
    cluster.setdefault("apiServer", {})["certSANs"] = cert_sans(docs, endpoint, masters)
    ordered = [_args_for(docs[k], init["apiVersion"]) for k in INIT_KINDS if k in docs]
    return yaml.safe_dump_all(ordered, sort_keys=False)


def join_config(
    documents: dict[str, dict],
    *,
    version: str,
    node_ip: str,
    token: str,
    ca_hash: str,
    certificate_key: str = "",
) -> str:
    """The `kubeadm join --config` file: the join secrets travel in it (written through
    stdin, mode 0600), never on a command line."""
    api = kubeadm_api_version(version)
    endpoint, port = endpoint_of(documents)
    join = copy.deepcopy(documents.get("JoinConfiguration", {}))
    join.update(apiVersion=api, kind="JoinConfiguration")
    join["discovery"] = merged(
        join.get("discovery", {}),
        {
            "bootstrapToken": {
                "apiServerEndpoint": f"{endpoint}:{port}",
                "token": token,
                "caCertHashes": [ca_hash],
            }
        },
    )
    _node_ip(join.setdefault("nodeRegistration", {}), node_ip)
    if certificate_key:
        join["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": node_ip, "bindPort": port},
            "certificateKey": certificate_key,
        }
    else:
        join.pop("controlPlane", None)
    return yaml.safe_dump(_args_for(join, api), sort_keys=False)


def _dig(data: dict, path: tuple[str, ...]):
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _node_ip(registration: dict, node_ip: str) -> None:
    """The kubelet's --node-ip: the node's address on a host with several."""
    args = registration.get("kubeletExtraArgs") or {}
    if isinstance(args, list):  # v1beta4's list of name/value pairs
        args = {a["name"]: a["value"] for a in args}
    registration["kubeletExtraArgs"] = {**args, "node-ip": node_ip}


def _args_for(doc: dict, api: str) -> dict:
    """extraArgs maps (v1beta3) become name/value lists in v1beta4."""
    if not api.endswith("/v1beta4"):
        return doc
    out = {}
    for key, value in doc.items():
        if key in ("extraArgs", "kubeletExtraArgs") and isinstance(value, dict):
            value = [{"name": k, "value": str(v)} for k, v in value.items()]
        elif isinstance(value, dict):
            value = _args_for(value, api)
        out[key] = value
    return out


# Keys of the recorded control plane that are not fixed: what sealer may change later.
CHANGEABLE = ("documents", "cert_sans")


def documents_digest(documents: dict[str, dict]) -> str:
    """The merged kubeadm documents, minus what an upgrade changes (kubernetesVersion)."""
    import hashlib

    docs = copy.deepcopy(documents)
    docs.get("ClusterConfiguration", {}).pop("kubernetesVersion", None)
    text = json.dumps(docs, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def fixed_settings(documents: dict[str, dict]) -> dict[str, str]:
    """What the state keeps of the control plane, as strings: the endpoint and
    ClusterConfiguration's immutable fields, and a digest of the documents (they may change:
    sealer reconfigures the masters)."""
    name, port = endpoint_of(documents)
    out = {"endpoint": f"{name}:{port}", "documents": documents_digest(documents)}
    cluster = documents.get("ClusterConfiguration", {})
    for path in IMMUTABLE:
        value = _dig(cluster, path)
        if value is not None:
            out[".".join(path)] = (
                value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            )
    return out
