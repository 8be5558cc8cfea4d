"""Talking to registries through skopeo (containers/image, the library sealer itself uses
through buildah): the Registry HTTP API v2 with basic and bearer-token auth, TLS checked against
the system store and /etc/containers/certs.d/HOST:PORT/, blobs verified against their digests
as they arrive, blobs a registry already has not sent again.

Credentials never reach an argv: login feeds the password on stdin, and every other command
reads the auth file (containers' auth.json format, mode 0600).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cluster.errors import SealerError
from cluster.home import sealer_home
from cluster.oci.refs import Reference

TIMEOUT = 3 * 3600.0  # a few GiB over a slow link


class RegistryError(SealerError):
    pass


def program() -> str:
    found = shutil.which("skopeo")
    if not found:
        raise RegistryError(
            "talking to registries needs skopeo (Debian's skopeo package; scripts/setup "
            "installs it) on PATH"
        )
    return found


def auth_file() -> Path:
    """$REGISTRY_AUTH_FILE (the containers tools' variable), else $SEALER_HOME/auth.json."""
    return Path(os.environ.get("REGISTRY_AUTH_FILE") or sealer_home() / "auth.json")


def cert_dir(registry: str) -> Path | None:
    """$SEALER_HOME/certs.d/HOST:PORT when it exists (one sealer home's own trust), else None:
    skopeo then reads /etc/containers/certs.d/HOST:PORT and /etc/docker/certs.d as usual."""
    folder = sealer_home() / "certs.d" / registry
    return folder if folder.is_dir() else None


def tls_flags(prefix: str, registry: str, tls_verify: bool) -> list[str]:
    """--PREFIX-tls-verify and --PREFIX-cert-dir for one side of a copy ("" for inspect)."""
    dash = f"--{prefix}-" if prefix else "--"
    flags = [f"{dash}tls-verify={'true' if tls_verify else 'false'}"]
    folder = cert_dir(registry)
    if folder:
        flags.append(f"{dash}cert-dir={folder}")
    return flags


def run(
    argv: list[str],
    what: str,
    stdin: bytes | None = None,
    registries: tuple[str, ...] = (),
    show_progress: bool = False,
) -> subprocess.CompletedProcess:
    """Run skopeo; a failure becomes one line naming `what`. registries: those the command
    talks to (a refusal is told apart from a missing login by the auth file). show_progress:
    its progress goes to sealer's stderr (a terminal's), its errors are still read here."""
    env = {**os.environ, "LC_ALL": "C"}
    try:
        done = subprocess.run(
            [program(), *argv],
            input=stdin if stdin is not None else b"",
            stdout=sys.stderr.fileno() if show_progress else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise RegistryError(f"{what}: no answer in {TIMEOUT / 3600:g} h; stopped") from None
    if done.returncode != 0:
        logged_in = stdin is not None or all(logged_in_to(r) for r in registries)
        raise RegistryError(f"{what}: {explain(done.stderr.decode(errors='replace'), logged_in)}")
    return done


def logged_in_to(registry: str) -> bool:
    """Whether the auth file holds credentials for registry."""
    import json

    try:
        auths = json.loads(auth_file().read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return registry in auths


def explain(stderr: str, logged_in: bool = True) -> str:
    """skopeo's fatal message, shortened to what the user can act on."""
    found = re.findall(r'msg="((?:[^"\\]|\\.)*)"', stderr)
    lines = stderr.strip().splitlines()
    message = (found[-1] if found else lines[-1] if lines else "failed").replace('\\"', '"')
    lowered = message.lower()
    refused = (
        "invalid username/password" in lowered or "unauthorized" in lowered and "login" in lowered
    )
    if refused and logged_in:
        return "the registry refused the username or password"
    if refused:
        return "the registry asks for credentials (401): sealer login REGISTRY first"
    if "authentication required" in lowered or "unauthorized" in lowered:
        return "the registry asks for credentials (401): sealer login REGISTRY first"
    if "x509" in lowered or "certificate" in lowered:
        return (
            "the registry's TLS certificate is not trusted: put its CA in "
            "/etc/containers/certs.d/HOST:PORT/ca.crt, or pass --tls-verify=false"
        )
    if "manifest unknown" in lowered or "name unknown" in lowered:
        return "no such image in the registry (manifest unknown)"
    if "blob unknown" in lowered or "fetching blob" in lowered and "404" in message:
        blob = re.search(r"sha256:[a-f0-9]{64}", message)
        return f"the registry lacks layer {blob[0] if blob else '?'} (404)"
    if "digest" in lowered and any(w in lowered for w in ("mismatch", "not match")):
        blob = re.search(r"expected (sha256:[a-f0-9]{64})", message) or re.search(
            r"(sha256:[a-f0-9]{64})", message
        )
        return f"{blob[1] if blob else 'a blob'} does not match its digest; refused"
    if "connection refused" in lowered or "no such host" in lowered:
        return "the registry does not answer (" + message.rsplit(": ", 1)[-1] + ")"
    if "http response to https client" in lowered:
        return "the registry speaks plain HTTP: pass --tls-verify=false to use it"
    return message.rsplit(": ", 3)[-1] if len(message) > 300 else message


def docker(ref: Reference) -> str:
    return f"docker://{ref}"


def login(registry: str, user: str, password: str, tls_verify: bool) -> None:
    auth = auth_file()
    auth.parent.mkdir(parents=True, exist_ok=True)
    argv = ["login", "--authfile", str(auth), "--password-stdin", "--username", user]
    argv += tls_flags("", registry, tls_verify)
    run([*argv, registry], f"login {registry}", stdin=password.encode() + b"\n")
    _private(auth)


def logout(registry: str) -> None:
    auth = auth_file()
    if not auth.exists():
        raise RegistryError(f"logout {registry}: not logged in ({auth} does not exist)")
    run(["logout", "--authfile", str(auth), registry], f"logout {registry}")
    _private(auth)


def _private(path: Path) -> None:
    if path.exists():
        os.chmod(path, 0o600)


def credentials_args() -> list[str]:
    auth = auth_file()
    return ["--authfile", str(auth)] if auth.exists() else []


def remote_manifest(ref: Reference, tls_verify: bool) -> bytes:
    """The raw manifest (or index) the registry serves for ref."""
    argv = ["inspect", "--raw", "--retry-times", "2", *credentials_args()]
    argv += tls_flags("", ref.registry, tls_verify)
    return run([*argv, docker(ref)], f"pull {ref}", registries=(ref.registry,)).stdout


def platform_flags(platform: tuple[str, str, str] | None) -> list[str]:
    """--all for every platform of an index, or the override flags choosing one."""
    if not platform:
        return ["--all"]
    os_name, arch, variant = platform
    flags = ["--override-os", os_name, "--override-arch", arch]
    return flags + (["--override-variant", variant] if variant else [])


def copy(
    source: str,
    destination: str,
    what: str,
    *,
    src_registry: str = "",
    dest_registry: str = "",
    tls_verify: bool = True,
    platform: tuple[str, str, str] | None = None,
    dest_shared_blobs: Path | None = None,
    src_shared_blobs: Path | None = None,
    extra: tuple[str, ...] = (),
) -> None:
    show_progress = sys.stderr.isatty()  # a person watching: skopeo's blob by blob progress
    argv = ["copy", "--retry-times", "2", *credentials_args(), *platform_flags(platform)]
    if not show_progress:
        argv.append("--quiet")
    if src_registry:
        argv += tls_flags("src", src_registry, tls_verify)
    if dest_registry:
        argv += tls_flags("dest", dest_registry, tls_verify)
    if dest_shared_blobs:
        argv += ["--dest-shared-blob-dir", str(dest_shared_blobs)]
    if src_shared_blobs:
        argv += ["--src-shared-blob-dir", str(src_shared_blobs)]
    registries = tuple(r for r in (src_registry, dest_registry) if r)
    run(
        [*argv, *extra, source, destination],
        what,
        registries=registries,
        show_progress=show_progress,
    )
