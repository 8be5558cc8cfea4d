"""A real source registry for the tests and benches: Distribution's registry on 127.0.0.1,
seeded with small images made offline (an OCI layout written here, pushed with skopeo)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from imagebuild import local_registry
from sandbox.oci import layer, multi_arch_image, oci_image, push

__all__ = ["layer", "multi_arch_image", "oci_image", "push", "source_registry", "inspect_digest"]

VENDORED = Path(__file__).resolve().parent.parent / "examples/images/.vendor/registry/registry"


@contextlib.contextmanager
def source_registry(storage: Path):
    """A registry on 127.0.0.1 for as long as the block runs; yields "127.0.0.1:PORT"."""
    program = str(VENDORED) if VENDORED.exists() else local_registry.binary()
    with local_registry.running(storage, program) as address:
        yield address


def inspect_digest(reference: str, *extra: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--format", "{{.Digest}}", *extra, f"docker://{reference}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip()
