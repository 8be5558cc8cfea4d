"""The registry's certificates: a CA sealer makes once per cluster, and a server certificate
for the registry's names, made from it at every serve.

The CA lives on the operator's machine ($SEALER_HOME/pki/<cluster>/, the key 0600), as
sealer (Go) keeps its registry CA in the cluster's rootfs; the hosts get the CA certificate
only, the registry hosts the server key too. Real X.509 (the `cryptography` library).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster.image import sealer_home
from cluster.names import cluster_name_problem

CA_DAYS, SERVER_DAYS = 3650, 825
_lock = threading.Lock()


def folder_of(cluster: str) -> Path:
    return _folder(cluster)


def _folder(cluster: str) -> Path:
    if cluster_name_problem(cluster):
        raise ValueError(f"cluster {cluster!r} {cluster_name_problem(cluster)}")
    return sealer_home() / "pki" / cluster


def has_ca(cluster: str) -> bool:
    folder = _folder(cluster)
    return (folder / "registry-ca.crt").exists() and (folder / "registry-ca.key").exists()


def ca(cluster: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of the cluster's registry CA, made on first use (once: hosts
    are set up in parallel, and all of them must trust the one CA)."""
    with _lock:
        folder = _folder(cluster)
        cert_path, key_path = folder / "registry-ca.crt", folder / "registry-ca.key"
        if cert_path.exists() and key_path.exists():
            return cert_path.read_bytes(), key_path.read_bytes()
        return _make_ca(cluster, folder, cert_path, key_path)


def _make_ca(cluster: str, folder: Path, cert_path: Path, key_path: Path) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sealer registry CA ({cluster})")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = _key_pem(key)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_pem, key_pem


def server(cluster: str, dns_names: list[str], ips: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM with the CA appended, key PEM) for the registry's names."""
    ca_pem, ca_key_pem = ca(cluster)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName(n) for n in dict.fromkeys(dns_names)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ips)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + ca_pem, _key_pem(key)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
