"""Transient connection failures are tried again and counted; permanent ones are not.

A door on the operator's loopback stands before a sandbox host's real sshd and does to chosen
connections what a busy sshd does: OpenSSH past its MaxStartups writes `Exceeded MaxStartups`
and closes, an overloaded host resets the handshake. Every other connection is carried through
to the host untouched.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading

import pytest

from cluster.model import SSH
from executors.driver import Driver, HostError, Timeouts
from operations.settings import RetryTally
from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, ip, ssh


class Door:
    """TCP on 127.0.0.1 before `target`:22; connections numbered in `turn_away` (1 = the
    first) get `how`: 'maxstartups' or 'reset'."""

    def __init__(self, target: str, turn_away: set[int], how: str = "maxstartups"):
        self.target, self.turn_away, self.how = target, turn_away, how
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.seen = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.seen += 1
            if self.seen in self.turn_away:
                self._refuse(conn)
            else:
                threading.Thread(target=self._carry, args=(conn,), daemon=True).start()

    def _refuse(self, conn: socket.socket) -> None:
        if self.how == "maxstartups":  # what sshd's drop_connection() sends
            conn.sendall(b"Exceeded MaxStartups\r\n")
        else:  # an RST instead of a FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _carry(self, conn: socket.socket) -> None:
        upstream = socket.create_connection((self.target, 22), 10)

        def pump(source, sink):
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream)

    def close(self) -> None:
        self.server.close()


def through(door: Door, n: int, **fields) -> SSH:
    """Host n's SSH settings, reached through the door (as ~/.ssh/config's HostName/Port)."""
    key = fields.pop("key_file", str(sandbox.key_path()))
    return SSH(user="root", key_file=key, address="127.0.0.1", port=door.port, **fields)


@pytest.mark.parametrize("how", ["maxstartups", "reset"])
def test_a_turned_away_handshake_is_tried_again_and_counted(hosts, how):
    door = Door(ip(1), {1, 2}, how)
    tally = RetryTally()
    driver = Driver({ip(1): through(door, 1)}, Timeouts(connect=5, retries=2, retried=tally))
    try:
        assert driver.host(ip(1)).run("hostname").stdout.strip() == "sandbox-1"
    finally:
        driver.close()
        door.close()
    assert door.seen == 3
    assert len(tally) == 2 and list(tally.by_host()) == [ip(1)]


def test_without_attempts_left_the_transient_failure_is_the_error(hosts):
    door = Door(ip(1), {1, 2, 3})
    tally = RetryTally()
    driver = Driver({ip(1): through(door, 1)}, Timeouts(connect=5, retries=1, retried=tally))
    with pytest.raises(HostError, match="cannot connect over SSH") as failed:
        driver.host(ip(1)).run("true")
    door.close()
    assert door.seen == 2  # one more attempt, as --retries 1 says
    assert len(tally) == 0  # the error says it: no failure passed
    assert failed.value.reason in ("down", "timed_out")


def test_a_refused_login_is_never_tried_again(hosts, tmp_path):
    door = Door(ip(1), set())
    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    tally = RetryTally()
    driver = Driver(
        {ip(1): through(door, 1, key_file=str(wrong), agent=False)},
        Timeouts(connect=5, retries=3, retried=tally),
    )
    with pytest.raises(HostError, match="authentication failed"):
        driver.host(ip(1)).run("true")
    door.close()
    assert door.seen == 1 and len(tally) == 0


def test_a_changed_host_key_is_never_tried_again(hosts):
    door = Door(ip(1), set())
    tally = RetryTally()
    pinned = {ip(1): "SHA256:" + "A" * 43}  # not the host's key
    driver = Driver(
        {ip(1): through(door, 1)}, Timeouts(connect=5, retries=3, retried=tally), pinned
    )
    with pytest.raises(HostError, match="host key changed"):
        driver.host(ip(1)).run("true")
    door.close()
    assert door.seen == 1 and len(tally) == 0


def test_a_bulk_copy_whose_ssh_client_is_turned_away_goes_over_the_open_connection(hosts, tmp_path):
    """The copy's own OpenSSH client (connection 2) meets a busy sshd; its command never
    started, so the open connection carries the copy instead."""
    door = Door(ip(1), {2})
    tally = RetryTally()
    driver = Driver({ip(1): through(door, 1)}, Timeouts(connect=5, retries=2, retried=tally))
    payload = tmp_path / "payload"
    payload.write_bytes(b"x" * 200_000)
    try:
        remote = driver.host(ip(1))
        remote.run("true")  # connection 1
        remote.upload("cat > /tmp/payload", str(payload))
    finally:
        driver.close()
        door.close()
    assert door.seen == 2 and len(tally) == 1
    assert ssh(1, "wc -c < /tmp/payload").stdout.strip() == "200000"


def test_the_cli_says_how_many_attempts_it_tried_again(hosts, tmp_path, monkeypatch):
    door = Door(ip(1), {1, 2})
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {ip(1)}\n  HostName 127.0.0.1\n")
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(config))
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [], ssh={"port": str(door.port)})
    try:
        result = cluster.apply()
        assert "Note: 2 SSH connection attempt(s) failed for a reason that passed" in (
            result.stderr
        )
        assert ip(1) in result.stderr.split("Note:")[1]
        quiet = cluster.sealer("plan", "--detailed-exitcode")  # the door lets all in now
        assert quiet.returncode == 0 and "Note:" not in quiet.stderr, quiet.stderr
    finally:
        door.close()
