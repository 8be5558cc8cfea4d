"""The SSH driver against a real sandbox host: what a command writes all arrives."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from executors.driver import OUTPUT_GRACE
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
