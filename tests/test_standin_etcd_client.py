"""The stand-in's etcd client through an election (src/sandbox_standin/etcd.py): a request
that meets "leader changed" is tried again, a refusal is not. The server here answers as
etcd's v3 JSON gateway does (its HTTP status and body); a real etcd cannot be made to change
leader on cue."""

from __future__ import annotations

import http.server
import json
import sys
import threading

import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "examples" / "images" / "src"))
from sandbox_standin.etcd import Etcd, EtcdUnavailable  # noqa: E402

LEADER_CHANGED = {"error": "etcdserver: leader changed", "code": 14}
NOT_PERMITTED = {"error": "etcdserver: permission denied", "code": 7}


@pytest.fixture
def gateway():
    """A server answering each POST with the next (status, body) of `answers`."""
    answers, seen = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            status, body = answers.pop(0) if answers else (200, {"ok": True})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers, seen
    server.shutdown()
    server.server_close()


def test_a_request_that_meets_an_election_is_tried_again(gateway):
    endpoint, answers, seen = gateway
    answers += [(503, LEADER_CHANGED), (503, LEADER_CHANGED)]
    assert Etcd([endpoint]).call("/v3/kv/txn", {}) == {"ok": True}
    assert len(seen) == 3


def test_an_election_that_does_not_end_is_reported(gateway):
    endpoint, answers, seen = gateway
    answers += [(503, LEADER_CHANGED)] * 50
    with pytest.raises(EtcdUnavailable, match="leader changed"):
        Etcd([endpoint]).call("/v3/kv/txn", {}, patience=0.5)
    assert 2 <= len(seen) < 50


def test_a_refusal_is_final(gateway):
    endpoint, answers, seen = gateway
    answers += [(403, NOT_PERMITTED)]
    with pytest.raises(EtcdUnavailable, match="permission denied"):
        Etcd([endpoint]).call("/v3/kv/range", {})
    assert len(seen) == 1
