"""Images to and from registries: pull into the store, push out of it (cluster/oci/skopeo.py
speaks the registry API)."""

from __future__ import annotations

import hashlib
import shutil

from cluster.errors import SealerError
from cluster.oci import images, sealer_format, skopeo
from cluster.oci import layout as oci
from cluster.oci.refs import parse
from cluster.oci.store import find, store

POLICIES = ("always", "missing", "ifnewer", "never")


def pull(
    text: str, policy: str = "missing", platform: str = "", tls_verify: bool = True
) -> tuple[str, bool]:
    """Bring an image into the store; (its stored name, whether anything was fetched)."""
    ref = parse(text)
    chosen = parse_platform(platform) if platform else None
    found = find(text)
    if policy == "never":
        if not found:
            raise SealerError(
                f"pull {text}: not in the local store, and --policy never forbids pulling it"
            )
        return found[0], False
    if policy == "missing" and found:
        return found[0], False
    if policy == "ifnewer" and found:
        remote = "sha256:" + hashlib.sha256(skopeo.remote_manifest(ref, tls_verify)).hexdigest()
        if remote == found[1]["digest"]:
            return found[0], False
    name = found[0] if found else text
    layout = store()
    with layout.in_use():  # no garbage collection removes the blobs before they are named
        staging = layout.staging()
        try:
            skopeo.copy(
                skopeo.docker(ref),
                f"oci:{staging}:{name}",
                f"pull {text}",
                src_registry=ref.registry,
                tls_verify=tls_verify,
                platform=chosen,
                dest_shared_blobs=layout.blobs,
            )
            descriptor = oci.Layout(staging).find(name)
            if not descriptor:
                raise SealerError(f"pull {text}: skopeo wrote no image")
            check_readable(layout, descriptor, f"pull {text}")  # or refused, never named
            with layout.locked():
                layout.set_name(name, descriptor)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return name, True


def check_readable(layout: oci.Layout, descriptor: dict, where: str) -> None:
    """Every instance's manifest, config and sealer annotations read (not its layers: they
    are checked as they are unpacked, at first use)."""
    for instance in images.instances(layout, descriptor, where):
        at = f"{where}: {instance.digest[:19]}"
        sealer_format.extension(instance.annotations, at)
        sealer_format.container_images(instance.annotations, at)


def parse_platform(value: str) -> tuple[str, str, str]:
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(p and p.replace("_", "").isalnum() for p in parts):
        raise SealerError(f"--platform {value!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def push(name: str, destination: str = "", tls_verify: bool = True) -> str:
    """Send a stored image (every platform of it) to its registry, or to destination."""
    found = find(name)
    if not found:
        raise SealerError(f"push {name}: not in the local store (`sealer images` lists it)")
    stored = found[0]
    ref = parse(destination or stored)
    images.instances(store(), found[1], stored)  # whole and readable before anything is sent
    skopeo.copy(
        f"oci:{store().root}:{stored}",
        skopeo.docker(ref),
        f"push {ref}",
        dest_registry=ref.registry,
        tls_verify=tls_verify,
    )
    return str(ref)
