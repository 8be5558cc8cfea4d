"""`sealer login`, `logout`, `pull`, `push` and `tag`: images between the store and registries.

Apart from operations/images.py so that these load only the OCI store (cluster/oci/), not the
ClusterImage model behind a build: a pull's own time is skopeo's.
"""

from __future__ import annotations

from cluster.errors import SealerError
from cluster.oci import refs, skopeo, transfer
from cluster.oci import store as oci_store


def pull(ref: str, policy: str = "always", platform: str = "", tls_verify: bool = True):
    """`sealer pull`: (the stored name, whether anything was fetched, its digest, its
    platforms). Nothing is unpacked: apply and build do that when they need the rootfs."""
    if policy not in transfer.POLICIES:
        raise SealerError(f"--policy {policy!r}: one of {', '.join(transfer.POLICIES)}")
    name, fetched = transfer.pull(ref, policy, platform, tls_verify)
    return (name, fetched, *oci_store.describe(name))


def push(ref: str, destination: str = "", tls_verify: bool = True) -> str:
    return transfer.push(ref, destination, tls_verify)


def tag(source: str, targets: list[str]) -> list[str]:
    return oci_store.tag(source, targets)


def login(registry: str, user: str, password: str, tls_verify: bool = True) -> str:
    name = refs.registry_name(registry)
    if not user:
        raise SealerError(f"login {name}: give the user name with -u USER")
    if not password:
        raise SealerError(f"login {name}: no password (give it with --password-stdin)")
    skopeo.login(name, user, password, tls_verify)
    return name


def logout(registry: str) -> str:
    name = refs.registry_name(registry)
    skopeo.logout(name)
    return name
