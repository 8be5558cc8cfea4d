"""New names for the API server's certificate, on every master, one master at a time.

As sealer (Go) and kubeadm do it: the kubeadm configuration gains the names, the apiserver
certificate is made again from it (`kubeadm init phase certs apiserver`), the cluster's copy of
ClusterConfiguration is updated (`kubeadm init phase upload-config kubeadm`, so masters that
join later get the names too), and the kube-apiserver container restarts to serve it.
"""

from __future__ import annotations

import shlex

from cluster import kubeadm
from cluster.errors import SealerError
from cluster.names import dns_name_problem
from executors.driver import Driver

CONFIG = "/etc/kubernetes/kubeadm.yaml"
PKI = "/etc/kubernetes/pki"
# The kubelet starts a stopped static pod again; wait for the API server to answer.
RESTART_APISERVER = (
    'id=$(crictl ps --name kube-apiserver -q) && test -n "$id" && crictl stop "$id" && '
    "for i in $(seq 150); do kubectl get nodes >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
)


def add_apiserver_sans(
    driver: Driver,
    documents: dict[str, dict],
    *,
    version: str,
    masters: list[str],
    sans: list[str],
    on_master=lambda ip: None,
) -> None:
    """Masters in the order given (the bootstrap master first); stops at the first failure."""
    docs = kubeadm.with_sans(documents, sans)
    for n, ip in enumerate(masters):
        config = kubeadm.init_config(docs, version=version, node_ip=ip, masters=masters)
        steps = [
            f"install -d /etc/kubernetes && cat > {CONFIG}",
            f"rm -f {PKI}/apiserver.crt {PKI}/apiserver.key",
            f"kubeadm init phase certs apiserver --config={CONFIG}",
        ]
        if n == 0:
            steps.append(f"kubeadm init phase upload-config kubeadm --config={CONFIG}")
        steps.append(f"bash -c {shlex.quote(RESTART_APISERVER)}")
        result = driver.host(ip).run(" && ".join(steps), stdin=config.encode(), check=False)
        if result.exit_code != 0:
            raise SealerError(
                f"{ip}: the apiserver certificate was not renewed: {result.stderr.strip()[-300:]}"
            )
        on_master(ip)


def san_problem(name: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(name)
        return ""
    except ValueError:
        return dns_name_problem(name) and f"{shlex.quote(name)} is not an IP address or a DNS name"
