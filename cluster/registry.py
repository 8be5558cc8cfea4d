"""The cluster's image registry, as spec.registry and the ClusterImage ask for it.

- localRegistry (sealer's default `sea.hub:5000`): sealer serves the image's `registry/` folder
  from the first master, or from every master with `ha: true`; every host maps the domain to
  the serving masters in its hosts file and points its container runtime at it.
- externalRegistry: the hosts are pointed at an existing registry (no hosts-file line: its
  name resolves by DNS), with its credentials.

A local registry is served when the image carries container images or the Clusterfile names
one; with neither, there is nothing to serve and no registry is set up (sealer (Go) always
starts one). When both are given, the external one is what the nodes use, as in sealer.

The password never leaves this object: records carry a PBKDF2 digest of it (salted with the
state's lineage), enough to see that it changed, useless to log in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

LOCAL, EXTERNAL = "local", "external"
DEFAULT_DOMAIN, DEFAULT_PORT = "sea.hub", 5000
PBKDF2_ROUNDS = 200_000
DOCKER_HUB_SERVER = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Registry:
    kind: str  # LOCAL or EXTERNAL
    domain: str
    port: int  # 0: the registry's default (external registries only)
    ha: bool = False
    insecure: bool = False
    username: str = ""
    password: str = field(default="", repr=False, compare=False)
    dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    mirrored: tuple[str, ...] = ()  # the registries the image's container images came from

    @property
    def endpoint(self) -> str:
        """DOMAIN:PORT, the name container runtimes and image references use."""
        return f"{self.domain}:{self.port}" if self.port else self.domain

    @property
    def scheme(self) -> str:
        return "http" if self.insecure else "https"

    def serving_hosts(self, masters: list[str]) -> list[str]:
        if self.kind != LOCAL or not masters:
            return []
        return list(masters) if self.ha else [masters[0]]

    def auth_digest(self, salt: str) -> str:
        if not self.username:
            return ""
        derived = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), f"sealer-registry:{salt}".encode(), PBKDF2_ROUNDS
        )
        return f"{self.username}:{derived.hex()[:32]}"

    def summary(self) -> dict:
        """What plans and `show` print: never the password."""
        return {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "ha": self.ha,
            "insecure": self.insecure,
            "username": self.username,
        }


def from_spec(spec: dict, image) -> Registry | None:
    """spec.registry (checked by spec_fields.registry_env) and the image, as a Registry."""
    mirrored = tuple(
        sorted({_registry_of(c.get("source", "")) for c in image.container_images} - {""})
    )
    external = spec.get("externalRegistry")
    if external:
        return Registry(
            EXTERNAL,
            external["domain"],
            int(external.get("port") or 0),
            insecure=bool(external.get("insecure")),
            username=external.get("username") or "",
            password=external.get("password") or "",
            mirrored=mirrored,
        )
    local = spec.get("localRegistry")
    if local is None and not image.container_images:
        return None
    local = local or {}
    san = (local.get("cert") or {}).get("subjectAltName") or {}
    return Registry(
        LOCAL,
        local.get("domain") or DEFAULT_DOMAIN,
        int(local.get("port") or DEFAULT_PORT),
        ha=bool(local.get("ha")),
        insecure=bool(local.get("insecure")),
        username=local.get("username") or "",
        password=local.get("password") or "",
        dns_names=tuple(san.get("dnsNames") or ()),
        ips=tuple(san.get("ips") or ()),
        mirrored=mirrored,
    )


def distribution_config(
    storage: str, address: str, tls: dict | None = None, htpasswd: str = ""
) -> dict:
    """A config.yml for Distribution's `registry serve`: the build's registry and the cluster's
    use the same one (filesystem storage, deletes allowed, quiet logs)."""
    http: dict = {"addr": address, "headers": {"X-Content-Type-Options": ["nosniff"]}}
    if tls:
        http["tls"] = tls
    config: dict = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True}},
        "http": http,
    }
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": "sealer-registry", "path": htpasswd}}
    return config


def _registry_of(source: str) -> str:
    return source.split("/", 1)[0] if "/" in source else ""


def content_digest(image) -> str:
    """What a registry host serves: the image's container images (names and digests)."""
    listed = sorted((c.get("name", ""), c.get("digest", "")) for c in image.container_images)
    return _digest(listed)


def served_digest(registry: Registry, image, auth: str) -> str:
    """A serving host's record: config, content, credentials (auth: Registry.auth_digest)."""
    server = {k: v for k, v in registry.summary().items() if k != "ha"}  # same on one host
    return _digest([server, registry.dns_names, registry.ips, content_digest(image), auth])


def client_digest(registry: Registry, serving: list[str], auth: str) -> str:
    """Every host's record: where the domain points and how the runtime reaches it."""
    return _digest([registry.summary(), sorted(serving), registry.mirrored, auth])


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, default=list)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def mirror_server(source_registry: str) -> str:
    """The upstream a mirrored registry's hosts.toml names as its server."""
    if source_registry == "docker.io":
        return DOCKER_HUB_SERVER
    return f"https://{source_registry}"
