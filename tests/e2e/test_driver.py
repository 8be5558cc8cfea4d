"""The SSH driver against a real sandbox host: what a command writes all arrives."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from executors.driver import IDLE_WAKEUP, OUTPUT_GRACE, HostError
from tests.e2e.conftest import ip, ssh_driver

SIZE = 300_000  # several pipe buffers: the command exits while its last output is in the pipe


def test_the_whole_output_arrives_even_when_sshd_sends_the_exit_status_first(hosts):
    driver = ssh_driver(1, 2)
    command = f"yes x | head -c {SIZE}; yes y | head -c {SIZE} >&2"

    def lengths(n: int) -> tuple[int, int]:
        result = driver.host(ip(n % 2 + 1)).run(command)
        return len(result.stdout), len(result.stderr)

    with ThreadPoolExecutor(8) as pool:  # several at once, so that sshd is busy
        assert set(pool.map(lengths, range(40))) == {(SIZE, SIZE)}
    driver.close()


def test_a_background_process_holding_the_output_does_not_hold_the_command(hosts):
    driver = ssh_driver(1)
    started = time.monotonic()
    result = driver.host(ip(1)).run("echo started; (sleep 30 &) ; true")
    assert result.stdout == "started\n"
    assert time.monotonic() - started < OUTPUT_GRACE + 10  # not the 30 s of the sleep
    driver.close()


def test_an_idle_connection_wakes_rarely_and_still_sees_its_host_go(hosts):
    """The reader thread waits IDLE_WAKEUP on an idle connection (not paramiko's 0.1 s), and
    still notices when the host closes the connection, and a new one is opened."""
    driver = ssh_driver(1)
    remote = driver.host(ip(1))
    assert remote.run("echo up").stdout == "up\n"
    transport = remote.transport()
    assert transport.sock.gettimeout() == IDLE_WAKEUP > 1
    # the host ends this connection's sshd
    with contextlib.suppress(HostError):  # the command's own channel goes with it
        remote.run("kill $PPID", check=False)
    deadline = time.monotonic() + 30
    while transport.is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not transport.is_active()
    assert remote.run("echo again").stdout == "again\n"  # a new connection
    driver.close()
