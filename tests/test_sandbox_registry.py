"""The sandbox's source registry (sealer sandbox registry): the demo's container images, offline,
and the build of the demo's application image from it, as `scripts/demo` runs it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from imagebuild import local_registry
from sandbox import registry
from tests.helpers import sealer
from tests.source_registry import VENDORED as VENDORED_REGISTRY
from tests.source_registry import inspect_digest

EXAMPLE_APPS = Path(__file__).resolve().parent.parent / "examples/apps"


@pytest.fixture
def port():
    port = local_registry.free_port()
    yield port
    registry.down()


def test_the_registry_serves_every_image_and_stops_with_sandbox_down(port):
    result = sealer("sandbox", "registry", "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert f"started on 127.0.0.1:{port}" in result.stdout
    for name in registry.IMAGES:
        reference = f"127.0.0.1:{port}/{name}"
        assert reference in result.stdout
        for arch in registry.ARCHES:
            digest = inspect_digest(reference, "--tls-verify=false", "--override-arch", arch)
            assert digest.startswith("sha256:")

    again = sealer("sandbox", "registry", "--port", str(port))
    assert again.returncode == 0 and "already running" in again.stdout

    other = sealer("sandbox", "registry", "--port", str(local_registry.free_port()))
    assert other.returncode == 1
    assert other.stderr.strip() == (
        f"Error: sandbox registry: already running on 127.0.0.1:{port}; "
        "`sealer sandbox down` stops it"
    )

    down = sealer("sandbox", "down")
    assert "Stopped the sandbox registry." in down.stdout
    assert registry._pid() is None


def test_a_taken_port_is_one_line_naming_it(tmp_path, port):
    with local_registry.running(tmp_path / "other", VENDORED_REGISTRY) as address:
        taken = int(address.rsplit(":", 1)[1])
        result = sealer("sandbox", "registry", "--port", str(taken))
    assert result.returncode == 1
    assert f"127.0.0.1:{taken} is taken by another program" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_app_image_builds_from_it(tmp_path, port):
    """examples/apps names its images on 127.0.0.1:5055; here on the test's own port."""
    context = tmp_path / "apps"
    shutil.copytree(EXAMPLE_APPS, context)
    for path in context.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace("127.0.0.1:5055", f"127.0.0.1:{port}"))
    assert sealer("sandbox", "registry", "--port", str(port)).returncode == 0

    built = sealer("build", "-t", "demo-apps:v1", str(context), timeout=300)
    assert built.returncode == 0, built.stderr
    shown = json.loads(sealer("image", "inspect", "demo-apps:v1", "--json").stdout)
    names = sorted(image["name"] for image in shown["metadata"]["containerImages"])
    assert names == ["sandbox/nginx:1.25", "sandbox/redis:7.2"]


def test_sealer_finds_the_registry_setup_put_beside_it(monkeypatch):
    """scripts/setup installs the registry in .venv/bin, where a fresh machine's PATH does not
    look: `sealer build` must find it there (the demo failed without it)."""
    monkeypatch.delenv("SEALER_REGISTRY_BINARY", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    found = Path(local_registry.binary())
    assert found.parent == Path(sys.executable).parent
