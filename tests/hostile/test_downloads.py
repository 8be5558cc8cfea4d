"""Issue 33: a hostile HTTP server behind an APP or ADD URL (imagebuild/fetch.py). A body cut
short is refused, a server that drips bytes cannot hold a build past its deadline, and
Docker's ADD --checksum pins the content. Real sockets on 127.0.0.1, real urllib."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time

import pytest

from cluster.errors import SealerError
from imagebuild import fetch, kubefile


@contextlib.contextmanager
def _server(answer):
    """A one-connection-at-a-time HTTP server whose every answer is answer(connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)  # the request
                with contextlib.suppress(OSError):
                    answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/app.tar"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_body_shorter_than_announced_is_refused(sealer_home):
    def short(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly fifteen b.")

    with (
        _server(short) as url,
        pytest.raises(SealerError, match="announced 100,000 bytes and sent 15"),
    ):
        fetch.download(url)
    assert not list((sealer_home / "cache" / "downloads").glob("*/app.tar"))


def test_a_server_that_drips_cannot_hold_the_build_past_its_deadline(sealer_home):
    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.2)

    started = time.monotonic()
    with _server(drip) as url, pytest.raises(SealerError, match="still downloading after 2s"):
        fetch.download(url, deadline=2)
    assert time.monotonic() - started < 10


def test_a_checksum_pins_the_content(sealer_home):
    body = b"the app\n"

    def good(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    right = "sha256:" + hashlib.sha256(body).hexdigest()
    with _server(good) as url:
        path, digest = fetch.download(url, right)
        assert path.read_bytes() == body and digest == right
        wrong = "sha256:" + "0" * 64
        with pytest.raises(SealerError, match="checksum mismatch"):
            fetch.download(url, wrong)


def test_the_kubefile_takes_docker_s_add_checksum_spelling():
    good = "sha256:" + "a" * 64
    assert kubefile.fetch_checksum(f"--checksum={good}") == good
    assert kubefile.fetch_checksum("--checksum=md5:abc") == ""
