"""The relay receiver (executors/relay.py) unpacks what a peer streams before the digest check
ends. A hostile stream must neither write outside its folder nor be kept. The receiver runs
here as the real python3 program it is on a host, fed over a real TCP socket."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

from executors.relay import RECEIVER


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content else None)
    return buffer.getvalue()


def _file(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), content


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, b""


def _start(tmp_path, expected: bytes, **extra) -> tuple[subprocess.Popen, int, str, str]:
    """The receiver expecting `expected`: (process, port, token, out)."""
    out = str(tmp_path / "host" / "rootfs.relay")
    token = "t" * 32
    header = {
        "bind": "127.0.0.1",
        "token": token,
        "out": out,
        "size": len(expected),
        "digest": hashlib.sha256(expected).hexdigest(),
        "next": None,
        "wait": 20,
        **extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    proc.stdin.write(json.dumps(header) + "\n")
    proc.stdin.close()
    return proc, int(proc.stdout.readline().split()[1]), token, out


def _receive(tmp_path, expected: bytes, sent: bytes) -> tuple[str, str]:
    """Run the receiver expecting `expected`, send it `sent`; returns (its last line, out)."""
    proc, port, token, out = _start(tmp_path, expected)
    with socket.create_connection(("127.0.0.1", port), 10) as conn:
        conn.sendall(token.encode() + b"\n" + sent)
    said = proc.stdout.read().strip().splitlines()
    assert proc.wait(30) == 0
    return said[-1], out


def test_a_good_stream_is_unpacked_and_kept(tmp_path):
    good = _tar([_file("bin/tool", b"ok\n"), _link("bin/alias", "tool")])
    said, out = _receive(tmp_path, good, good)
    assert said == "ok"
    assert Path(out, "bin/alias").read_text() == "ok\n"
    assert not os.path.exists(out + ".part")


def test_a_hostile_stream_writes_nothing_outside_and_is_not_kept(tmp_path):
    good = _tar([_file("bin/tool", b"ok\n")])
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = _tar(
        [
            _file(f"../../outside/{'x' * 3}", b"escaped\n"),
            _file(str(outside / "absolute"), b"escaped\n"),
            _link("esc", str(outside)),
            _file("esc/through-link", b"escaped\n"),
            _link("up", "../../outside"),
            _file("up/through-relative-link", b"escaped\n"),
        ]
    )
    said, out = _receive(tmp_path, good, hostile)
    assert said.startswith("bad")
    assert os.listdir(outside) == []
    assert not os.path.exists(out) and not os.path.exists(out + ".part")


def test_a_stream_that_is_not_a_tar_is_refused_even_with_the_right_digest(tmp_path):
    junk = b"\x00not a tar\xff" * 100
    said, out = _receive(tmp_path, junk, junk)
    assert said.startswith("bad") and said.endswith("tar-failed")
    assert not os.path.exists(out) and not os.path.exists(out + ".part")


# ---- issue 33: a silent connection, a stranger, a stream longer than announced ----


def test_a_silent_connection_does_not_keep_the_real_sender_out(tmp_path):
    good = _tar([_file("bin/tool", b"ok\n")])
    proc, port, token, out = _start(tmp_path, good, token_wait=1)
    silent = socket.create_connection(("127.0.0.1", port), 10)  # says nothing, stays open
    wrong = socket.create_connection(("127.0.0.1", port), 10)
    wrong.sendall(b"x" * 32 + b"\n")
    with socket.create_connection(("127.0.0.1", port), 10) as conn:
        conn.sendall(token.encode() + b"\n" + good)
    said = proc.stdout.read().strip().splitlines()
    assert proc.wait(30) == 0 and said[-1] == "ok", said
    silent.close()
    wrong.close()


def test_only_a_host_before_it_in_its_chain_may_send(tmp_path):
    good = _tar([_file("bin/tool", b"ok\n")])
    proc, port, token, out = _start(tmp_path, good, wait=3, peers=["127.0.0.2"])
    # from 127.0.0.1, a stranger: closed on it, which is the point
    with socket.create_connection(("127.0.0.1", port), 10) as conn, contextlib.suppress(OSError):
        conn.sendall(token.encode() + b"\n" + good)
    said = proc.stdout.read().strip().splitlines()
    assert proc.wait(30) == 0 and said == ["no-sender"], said
    assert not os.path.exists(out) and not os.path.exists(out + ".part")
    proc, port, token, out = _start(tmp_path, good, peers=["127.0.0.2"])
    with socket.create_connection(("127.0.0.1", port), 10, source_address=("127.0.0.2", 0)) as c:
        c.sendall(token.encode() + b"\n" + good)
    assert proc.stdout.read().strip().splitlines()[-1] == "ok"


def test_a_stream_longer_than_announced_is_cut_at_the_announced_size(tmp_path):
    expected = b"x" * 1000
    proc, port, token, out = _start(tmp_path, expected)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), 10) as conn:
        conn.sendall(token.encode() + b"\n")
        try:
            for _ in range(200):  # 200 MiB offered
                conn.sendall(b"y" * (1 << 20))
                sent += 1
        except OSError:
            pass  # the receiver stopped reading and went away
    said = proc.stdout.read().strip().splitlines()[-1]
    assert proc.wait(30) == 0
    assert said.startswith("bad 1000 ") or said.startswith("bad 0 "), said
    assert said.endswith("over-size") and sent < 200
    assert not os.path.exists(out) and not os.path.exists(out + ".part")
