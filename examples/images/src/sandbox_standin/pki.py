"""kubeadm's certificates, made with the real openssl."""

import os
import re
import subprocess

from .common import fail, node_name, read_file, write_file
from .kubelet import KUBE_DIR

PKI = f"{KUBE_DIR}/pki"

SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc")


def openssl(*args, stdin=None):
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"openssl {args[0]}: {result.stderr.strip()}")
    return result.stdout


def make_ca():
    """kubeadm's cluster CA (10 years), and its discovery hash: sha256 of the public key."""
    os.makedirs(PKI, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=kubernetes",
        "-keyout",
        f"{PKI}/ca.key",
        "-out",
        f"{PKI}/ca.crt",
    )
    os.chmod(f"{PKI}/ca.key", 0o600)
    return {"crt": read_file(f"{PKI}/ca.crt"), "key": read_file(f"{PKI}/ca.key")}


def ca_hash():
    import hashlib

    public = subprocess.run(
        f"openssl x509 -pubkey -noout -in {PKI}/ca.crt | openssl pkey -pubin -outform DER",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(public).hexdigest()


def write_ca(ca):
    write_file(f"{PKI}/ca.crt", ca["crt"])
    write_file(f"{PKI}/ca.key", ca["key"], 0o600)


def apiserver_cert(cluster_configuration, address):
    """The apiserver's serving certificate (1 year), signed by the cluster CA, with kubeadm's
    names: the service names, the node, its address and ClusterConfiguration's certSANs. An
    existing certificate is kept, as kubeadm does."""
    if os.path.exists(f"{PKI}/apiserver.crt"):
        print("[certs] Using existing apiserver certificate and key on disk")
        return
    import ipaddress

    sans = [*SERVICE_NAMES, node_name(), address, "10.96.0.1"]
    sans += [str(x) for x in (cluster_configuration.get("apiServer") or {}).get("certSANs") or []]
    endpoint = str(cluster_configuration.get("controlPlaneEndpoint") or "").rsplit(":", 1)[0]
    sans += [endpoint] if endpoint else []
    entries = []
    for name in dict.fromkeys(sans):
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*.-]+", name):
                fail(f"certSANs: {name!r} is not a DNS name or an IP address")
            entries.append(f"DNS:{name}")
    ext = f"{PKI}/apiserver.ext"
    write_file(ext, "subjectAltName=" + ",".join(entries) + "\n")
    openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        f"{PKI}/apiserver.key",
        "-out",
        f"{PKI}/apiserver.csr",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        f"{PKI}/apiserver.csr",
        "-CA",
        f"{PKI}/ca.crt",
        "-CAkey",
        f"{PKI}/ca.key",
        "-CAcreateserial",
        "-days",
        "365",
        "-extfile",
        ext,
        "-out",
        f"{PKI}/apiserver.crt",
    )
    os.chmod(f"{PKI}/apiserver.key", 0o600)
    for leftover in (ext, f"{PKI}/apiserver.csr"):
        os.unlink(leftover)
    print('[certs] Generating "apiserver" certificate and key')
