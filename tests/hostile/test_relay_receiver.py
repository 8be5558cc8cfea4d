"""The relay receiver (executors/relay.py) unpacks what a peer streams before the digest check
ends. A hostile stream must neither write outside its folder nor be kept. The receiver runs
here as the real python3 program it is on a host, fed over a real TCP socket."""

from __future__ import annotations

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


def _receive(tmp_path, expected: bytes, sent: bytes) -> tuple[str, str]:
    """Run the receiver expecting `expected`, send it `sent`; returns (its last line, out)."""
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
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write(json.dumps(header) + "\n")
    proc.stdin.close()
    port = int(proc.stdout.readline().split()[1])
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
