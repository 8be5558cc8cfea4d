from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from tests.helpers import make_image
from tests.pg_server import PostgresServer
from tests.source_registry import VENDORED as VENDORED_REGISTRY


@pytest.fixture(autouse=True)
def sealer_home(tmp_path, monkeypatch):
    """Every test gets its own SEALER_HOME; nothing leaks into ~/.sealer."""
    home = tmp_path / "sealer-home"
    monkeypatch.setenv("SEALER_HOME", str(home))
    monkeypatch.delenv("SEALER_STATE", raising=False)
    monkeypatch.delenv("SEALER_BACKEND", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # this machine's user's OpenSSH config and agent must not steer the tests' connections
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(tmp_path / "no-ssh-config"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    # Sandbox hosts get networks of their own (198.18.0.0/15 on a bridge), as real machines
    # have: their own 127.0.0.1, ports and routes (sandbox/network.py).
    monkeypatch.setenv("SEALER_SANDBOX_NET", "netns")
    if VENDORED_REGISTRY.exists():  # builds FROM scratch have no bin/registry of their own
        monkeypatch.setenv("SEALER_REGISTRY_BINARY", str(VENDORED_REGISTRY))
    yield home
    # Images, layers and unpacked rootfs take tens of MB per build: a whole run keeps every
    # test's tmp_path to the end (CI's /tmp is a tmpfs); the state and the rest stay for a look.
    for heavy in ("oci", "cache", "images"):
        shutil.rmtree(home / heavy, ignore_errors=True)


@pytest.fixture
def image(tmp_path):
    return make_image(tmp_path / "image")


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the whole run (tests use their own cluster names in it)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_backend(postgres, monkeypatch):
    """SEALER_BACKEND pointing at the test server, its password only in PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    monkeypatch.setenv("SEALER_BACKEND", postgres.url)
    return postgres.url


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder: (folder, base URL without a slash)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
