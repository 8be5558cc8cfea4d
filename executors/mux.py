"""A client of OpenSSH's connection-sharing protocol (PROTOCOL.mux in OpenSSH's sources).

A command over a shared connection is normally `ssh -S socket host command`: a whole ssh
process (about 10 ms of CPU here, mostly loading OpenSSL) to ask the master for one session.
This speaks to the master directly instead: the hello, a new-session request with the command,
the three stdio pipes passed over the socket (SCM_RIGHTS), then the exit message. The master
was opened by sealer's own ssh command with the pinned host key (executors/connections.py);
nothing here authenticates or checks keys, exactly as with ssh's own mux client.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import time

from executors.driver import OUTPUT_GRACE  # the same grace as a command over paramiko

HELLO = 0x00000001
NEW_SESSION = 0x10000002
ALIVE_CHECK = 0x10000004
TERMINATE = 0x10000005
OK = 0x80000001
PERMISSION_DENIED = 0x80000002
FAILURE = 0x80000003
EXIT_MESSAGE = 0x80000004
ALIVE = 0x80000005
SESSION_OPENED = 0x80000006
TTY_ALLOC_FAIL = 0x80000008
VERSION = 4
NO_ESCAPE = 0xFFFFFFFF


class NoMaster(Exception):
    """No master answers on the socket (never opened, expired, or its host went away)."""


class MuxTimeout(Exception):
    pass


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def _string(data: bytes) -> bytes:
    return _u32(len(data)) + data


def _packet(*fields: bytes) -> bytes:
    body = b"".join(fields)
    return _u32(len(body)) + body


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise NoMaster("the master closed the socket")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", _read_exact(sock, 4))
    body = _read_exact(sock, length)
    return struct.unpack(">I", body[:4])[0], body[4:]


def _reason(body: bytes) -> str:
    """The text of a failure reply: request id, then a string."""
    (size,) = struct.unpack(">I", body[4:8])
    return body[8 : 8 + size].decode(errors="replace")


def _connect(socket_path: str, timeout: float) -> socket.socket:
    """A socket to the master, past the hello exchange."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(_packet(_u32(HELLO), _u32(VERSION)))
        kind, _ = _read_packet(sock)
    except OSError as e:
        sock.close()
        raise NoMaster(str(e)) from None
    except NoMaster:
        sock.close()
        raise
    if kind != HELLO:
        sock.close()
        raise NoMaster(f"unexpected hello 0x{kind:08x}")
    return sock


def alive(socket_path: str, timeout: float = 5.0) -> int:
    """The master's pid (`ssh -O check`); NoMaster when none answers."""
    with _connect(socket_path, timeout) as sock:
        sock.sendall(_packet(_u32(ALIVE_CHECK), _u32(1)))
        kind, body = _read_packet(sock)
        if kind != ALIVE:
            raise NoMaster(f"unexpected reply 0x{kind:08x}")
        return struct.unpack(">I", body[4:8])[0]


def terminate(socket_path: str, timeout: float = 5.0) -> None:
    """Ask the master to end (`ssh -O exit`): it closes the connection to its host."""
    with _connect(socket_path, timeout) as sock:
        sock.sendall(_packet(_u32(TERMINATE), _u32(1)))
        with contextlib.suppress(NoMaster, OSError):
            _read_packet(sock)  # OK, or the master is already gone


def run(socket_path: str, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of command run over the master at socket_path."""
    sock = _connect(socket_path, timeout)
    pipes: list[int] = []
    try:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        pipes += [stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w]
        request = _packet(
            _u32(NEW_SESSION),
            _u32(1),  # request id
            _string(b""),  # reserved
            _u32(0),  # no tty
            _u32(0),  # no X11
            _u32(0),  # no agent
            _u32(0),  # not a subsystem
            _u32(NO_ESCAPE),
            _string(b""),  # TERM
            _string(command.encode()),
        )
        sock.sendall(request)
        for fd in (stdin_r, stdout_w, stderr_w):  # the session's ends: the master's now
            socket.send_fds(sock, [b"\0"], [fd])
        for fd in (stdin_r, stdout_w, stderr_w):
            os.close(fd)
            pipes.remove(fd)
        kind, body = _read_packet(sock)
        if kind in (FAILURE, PERMISSION_DENIED):
            raise NoMaster(f"the master refused a session: {_reason(body)}")
        if kind != SESSION_OPENED:
            raise NoMaster(f"unexpected reply 0x{kind:08x}")
        with contextlib.suppress(BrokenPipeError):  # a command that does not read its input
            _write_all(stdin_w, stdin)
        os.close(stdin_w)
        pipes.remove(stdin_w)
        return _collect(sock, stdout_r, stderr_r, timeout)
    finally:
        sock.close()
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _collect(sock: socket.socket, stdout_r: int, stderr_r: int, timeout: float):
    """Read both outputs and the exit message; done at the exit and the outputs' end, or
    OUTPUT_GRACE after the exit (a background process may keep an output open)."""
    out, err = bytearray(), bytearray()
    code, exited_at = None, None
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout_r, selectors.EVENT_READ, out)
        selector.register(stderr_r, selectors.EVENT_READ, err)
        selector.register(sock, selectors.EVENT_READ, None)
        open_outputs = 2
        while True:
            if code is not None and (
                open_outputs == 0 or time.monotonic() > exited_at + OUTPUT_GRACE
            ):
                return code, bytes(out), bytes(err)
            left = deadline - time.monotonic()
            if left <= 0:
                raise MuxTimeout
            for key, _ in selector.select(min(left, 0.5)):
                if key.data is None:  # the master: the exit message, or its end
                    chunk = sock.recv(4096)
                    if not chunk:
                        if code is None:
                            raise NoMaster("the master ended the session without an exit status")
                        selector.unregister(sock)
                        continue
                    buffer += chunk
                    code, buffer = _exit_code(buffer, code)
                    if code is not None and exited_at is None:
                        exited_at = time.monotonic()
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    key.data.extend(chunk)
                else:
                    selector.unregister(key.fd)
                    open_outputs -= 1


def _exit_code(buffer: bytes, code: int | None) -> tuple[int | None, bytes]:
    """The exit value once an exit message has arrived whole; the bytes left over."""
    while len(buffer) >= 4:
        (length,) = struct.unpack(">I", buffer[:4])
        if len(buffer) < 4 + length:
            break
        body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
        kind = struct.unpack(">I", body[:4])[0]
        if kind == EXIT_MESSAGE:
            code = struct.unpack(">I", body[8:12])[0]
        elif kind != TTY_ALLOC_FAIL:
            raise NoMaster(f"unexpected message 0x{kind:08x}")
    return code, buffer
