"""kubeadm's configuration: image defaults and the Clusterfile's documents merged per kind."""

from __future__ import annotations

import pytest
import yaml

from cluster import kubeadm

DEFAULTS = [
    {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration"},
    {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "networking": {"podSubnet": "100.64.0.0/10", "serviceSubnet": "10.96.0.0/22"},
        "apiServer": {"extraArgs": {"audit-log-maxage": "30"}, "certSANs": ["old.example"]},
    },
    {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"},
]
USER = [
    {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "networking": {"podSubnet": "10.244.0.0/16"},
        "apiServer": {"extraArgs": {"v": "2"}, "certSANs": ["api.example.test"]},
    }
]


def test_api_version_follows_the_kubernetes_version():
    assert kubeadm.kubeadm_api_version("v1.21.4") == "kubeadm.k8s.io/v1beta2"
    assert kubeadm.kubeadm_api_version("v1.25.3") == "kubeadm.k8s.io/v1beta3"
    assert kubeadm.kubeadm_api_version("v1.31.0") == "kubeadm.k8s.io/v1beta4"
    assert "kubeadm.k8s.io/v1beta2" not in kubeadm.readable_api_versions(
        "ClusterConfiguration", "v1.26.1"
    )
    with pytest.raises(kubeadm.KubeadmConfigError):
        kubeadm.minor("latest")


def test_maps_merge_deeply_lists_are_replaced_and_the_user_wins():
    docs = kubeadm.merged_documents(DEFAULTS, USER, "v1.25.3")
    cluster = docs["ClusterConfiguration"]
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/22"}
    assert cluster["apiServer"]["extraArgs"] == {"audit-log-maxage": "30", "v": "2"}
    assert cluster["apiServer"]["certSANs"] == ["api.example.test"]
    assert DEFAULTS[1]["networking"]["podSubnet"] == "100.64.0.0/10"  # inputs untouched


def test_init_config_has_one_document_per_kind_with_endpoint_sans_and_node_ip():
    docs = kubeadm.merged_documents(DEFAULTS, USER, "v1.25.3")
    text = kubeadm.init_config(
        docs, version="v1.25.3", node_ip="10.0.0.1", masters=["10.0.0.1", "10.0.0.2"]
    )
    out = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in out] == [
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
    ]
    init, cluster = out[0], out[1]
    assert init["localAPIEndpoint"]["advertiseAddress"] == "10.0.0.1"
    assert init["nodeRegistration"]["kubeletExtraArgs"]["node-ip"] == "10.0.0.1"
    assert cluster["controlPlaneEndpoint"] == "apiserver.cluster.local:6443"
    assert cluster["kubernetesVersion"] == "v1.25.3"
    assert cluster["apiServer"]["certSANs"] == [
        "apiserver.cluster.local",
        "10.0.0.1",
        "10.0.0.2",
        "127.0.0.1",
        "api.example.test",
    ]


def test_a_named_control_plane_endpoint_is_kept_an_address_is_not():
    named = [{"kind": "ClusterConfiguration", "controlPlaneEndpoint": "k8s.internal:7443"}]
    assert kubeadm.endpoint_of(kubeadm.merged_documents([], named, "v1.25.3")) == (
        "k8s.internal",
        7443,
    )
    address = [{"kind": "ClusterConfiguration", "controlPlaneEndpoint": "10.0.0.1:6443"}]
    assert kubeadm.endpoint_of(kubeadm.merged_documents([], address, "v1.25.3")) == (
        "apiserver.cluster.local",
        6443,
    )


def test_join_config_carries_the_secrets_and_only_a_master_gets_control_plane():
    docs = kubeadm.merged_documents(DEFAULTS, USER, "v1.25.3")
    worker = yaml.safe_load(
        kubeadm.join_config(
            docs,
            version="v1.25.3",
            node_ip="10.0.1.1",
            token="abcdef.0123456789abcdef",
            ca_hash="sha256:00",
        )
    )
    assert worker["kind"] == "JoinConfiguration"
    assert worker["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "apiserver.cluster.local:6443",
        "token": "abcdef.0123456789abcdef",
        "caCertHashes": ["sha256:00"],
    }
    assert "controlPlane" not in worker
    assert worker["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "10.0.1.1"}
    master = yaml.safe_load(
        kubeadm.join_config(
            docs, version="v1.25.3", node_ip="10.0.0.2", token="t", ca_hash="h", certificate_key="k"
        )
    )
    assert master["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.2", "bindPort": 6443},
        "certificateKey": "k",
    }


def test_v1beta4_takes_extra_args_as_name_value_pairs():
    docs = kubeadm.merged_documents(DEFAULTS, USER, "v1.31.2")
    out = list(
        yaml.safe_load_all(
            kubeadm.init_config(docs, version="v1.31.2", node_ip="10.0.0.1", masters=["10.0.0.1"])
        )
    )
    assert out[1]["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert {"name": "v", "value": "2"} in out[1]["apiServer"]["extraArgs"]
    assert out[0]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.0.1"}
    ]


def test_fields_a_running_cluster_cannot_change_are_recorded_as_strings():
    fixed = kubeadm.fixed_settings(kubeadm.merged_documents(DEFAULTS, USER, "v1.25.3"))
    assert fixed == {
        "endpoint": "apiserver.cluster.local:6443",
        "networking.podSubnet": "10.244.0.0/16",
        "networking.serviceSubnet": "10.96.0.0/22",
        "documents": kubeadm.documents_digest(kubeadm.merged_documents(DEFAULTS, USER, "v1.25.3")),
    }


def test_a_control_plane_endpoint_must_be_a_dns_name_or_an_address():
    def problems(endpoint):
        doc = {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration"}
        return kubeadm.document_problems([{**doc, "controlPlaneEndpoint": endpoint}], "v1.25.3")

    assert problems("k8s.internal:6443") == [] and problems("10.0.0.1:6443") == []
    assert problems("Bad_Name;x") and problems("k8s.internal:port")


def test_alt_names_are_names_or_addresses_and_extend_the_known_ones():
    from executors import certs

    assert certs.san_problem("api.example.test") == "" and certs.san_problem("198.18.0.7") == ""
    assert certs.san_problem("fd00::1") == ""
    for bad in ("bad name", "a;rm -rf /", "UPPER.example", "-x.example", ""):
        assert certs.san_problem(bad), bad
    docs = kubeadm.merged_documents(DEFAULTS, [], "v1.25.3")
    extended = kubeadm.with_sans(docs, ["api.example.test", "old.example"])
    assert extended["ClusterConfiguration"]["apiServer"]["certSANs"] == [
        "old.example",
        "api.example.test",
    ]
    assert docs["ClusterConfiguration"]["apiServer"]["certSANs"] == ["old.example"]
