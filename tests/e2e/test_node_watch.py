"""The shared node watch over a real SSH channel to a sandbox host: it answers waiters from the
events the command writes, ends with its last waiter, and tells waiters when it cannot run
(they then poll). The stand-in kubectl's own watch is used by every e2e apply (test_lifecycle)."""

from __future__ import annotations

import json
import threading
import time
from shlex import quote

from executors.runtimes.watch import NodeWatch
from sandbox import hosts as sandbox
from tests.e2e.conftest import host, ip, ssh_driver


def remote():
    driver = ssh_driver(1)
    return driver, driver.host(ip(1))


def event(kind: str, name: str, ready: bool) -> str:
    node = {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }
    return json.dumps({"type": kind, "object": node})


def ready(node: dict | None) -> bool:
    return node is not None and node["status"]["conditions"][0]["status"] == "True"


def writers_running() -> bool:
    out = sandbox.run_in(host(1), ["ps", "-eo", "args"]).stdout
    return "watch-writer" in out


def test_waiters_see_events_as_they_come_and_the_last_one_out_ends_the_command(hosts):
    driver, node_host = remote()
    # A command that writes events slowly, like kubectl: b is NotReady, then Ready, then gone.
    script = (
        f": watch-writer; echo {quote(event('ADDED', 'a', True))}; sleep 1; "
        f"echo {quote(event('ADDED', 'b', False))}; sleep 1; "
        f"echo {quote(event('MODIFIED', 'b', True))}; sleep 1; "
        f"echo {quote(event('DELETED', 'b', True))}; "
        "while sleep 0.2; do echo; done"
    )
    watch = NodeWatch(lambda: node_host.follow(script))
    assert watch.join() and watch.join()  # two waiters
    results = {}

    def wait_for(name: str) -> None:
        results[name] = watch.wait(name, ready, timeout=30)
        watch.leave()

    waiters = [threading.Thread(target=wait_for, args=(n,)) for n in ("a", "b")]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join(60)
    assert results == {"a": True, "b": True}
    assert watch.finished and not watch.join()  # over: the next waiter starts a new one
    deadline = time.monotonic() + 15
    while writers_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not writers_running(), "the watch command outlived its last waiter"
    driver.close()


def test_a_deleted_node_is_no_longer_seen_and_a_timeout_says_false(hosts):
    driver, node_host = remote()
    script = (
        f"echo {quote(event('ADDED', 'c', True))}; sleep 1; "
        f"echo {quote(event('DELETED', 'c', True))}; "
        "while sleep 0.2; do echo; done"
    )
    watch = NodeWatch(lambda: node_host.follow(script))
    assert watch.join()
    assert watch.wait("c", ready, timeout=30) is True
    assert watch.wait("c", lambda node: node is None, timeout=30) is True  # the deletion
    assert watch.wait("c", ready, timeout=1.5) is False  # deleted: not Ready any more
    watch.leave()
    driver.close()


def test_a_watch_that_cannot_run_sends_its_waiters_back_to_polling(hosts):
    driver, node_host = remote()
    watch = NodeWatch(lambda: node_host.follow("echo 'error: unknown flag: --watch' >&2; exit 2"))
    assert watch.join()
    assert watch.wait("a", ready, timeout=30) is None
    assert "exited with 2: error: unknown flag: --watch" in watch.problem
    watch.leave()
    driver.close()
