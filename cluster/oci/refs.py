"""Image references as Docker and the containers tools read them: [REGISTRY/]PATH[:TAG][@DIGEST].

A reference reaches skopeo's command line and the store's index, so it is checked here against
the distribution reference grammar before anything else sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cluster.errors import SealerError

DEFAULT_REGISTRY = "docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z"
)
REGISTRY = re.compile(rf"^{_DOMAIN}\Z")
MAX_LENGTH = 255


class ReferenceError(SealerError):
    pass


@dataclass(frozen=True)
class Reference:
    registry: str  # docker.io, quay.io, 127.0.0.1:5000
    path: str  # library/nginx, sealerio/kubernetes
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        """The full name: the store's key, what skopeo is given."""
        text = self.repository
        if self.tag or not self.digest:
            text += f":{self.tag or 'latest'}"
        return text + (f"@{self.digest}" if self.digest else "")


def parse(text: str, where: str = "") -> Reference:
    """NAME[:TAG][@DIGEST] -> Reference, with Docker's defaults (docker.io, library/, latest)."""
    prefix = f"{where}: " if where else ""
    m = REFERENCE.match(text or "")
    if not m or len(text) > MAX_LENGTH:
        raise ReferenceError(
            f"{prefix}{text!r} is not an image reference ([REGISTRY/]PATH[:TAG][@sha256:...], "
            "lowercase path, e.g. docker.io/sealerio/kubernetes:v1.22.15)"
        )
    domain, path = m["domain"], m["path"]
    if domain and not _is_domain(domain):  # "sealerio/kubernetes": a path, not a registry
        domain, path = None, f"{domain}/{path}"
        if not re.fullmatch(rf"{_COMPONENT}(?:/{_COMPONENT})*", path):
            raise ReferenceError(f"{prefix}{text!r}: the repository path must be lowercase")
    registry = domain or DEFAULT_REGISTRY
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return Reference(registry, path, m["tag"] or "", m["digest"] or "")


def _is_domain(first: str) -> bool:
    """Docker's rule: the first component names a registry when it has a dot or a port, or is
    localhost."""
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


def is_reference(text: str) -> bool:
    try:
        parse(text)
    except ReferenceError:
        return False
    return True


def same(a: str, b: str) -> bool:
    """Whether two names mean one image (nginx:1.25 is docker.io/library/nginx:1.25)."""
    try:
        return str(parse(a)) == str(parse(b))
    except ReferenceError:
        return a == b


def registry_name(text: str) -> str:
    """A registry as `sealer login` takes it: HOST[:PORT], a scheme or path dropped."""
    value = re.sub(r"^[a-z]+://", "", (text or "").strip()).split("/", 1)[0]
    if value in ("index.docker.io", "registry-1.docker.io"):
        value = DEFAULT_REGISTRY
    if not REGISTRY.match(value):
        raise ReferenceError(f"{text!r} is not a registry (HOST[:PORT], e.g. quay.io)")
    return value
