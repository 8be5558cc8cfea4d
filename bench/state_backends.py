"""Benchmark: the PostgreSQL state backend against the local file, measured in the same run.

For each backend: lock + read an empty state; 1,000 journal appends (one per finished action,
each durable: an fsynced line, or a committed row); one full write of a 5,000-host document
(which folds the journal in); a read of it; lock + unlock. The local file is the baseline.
Then: how soon another client gets the lock after its holder is killed with kill -9.
The PostgreSQL server is started here, as the tests start it (tests/pg_server.py); it runs
with fsync=off, so its figures are a floor for a real server's commit latency.

    .venv/bin/python bench/state_backends.py
"""

from __future__ import annotations

import copy
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.records import HostRecord  # noqa: E402
from state.document import new_document, update_host  # noqa: E402
from state.local import LocalBackend  # noqa: E402
from tests.pg_server import PostgresServer  # noqa: E402

APPENDS, HOSTS, RUNS = 1000, 5000, 3


def document(cluster: str) -> dict:
    doc = new_document(cluster)
    for n in range(HOSTS):
        ip = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        doc["hosts"][ip] = HostRecord(
            roles=("node",),
            labels={"zone": f"z{n % 3}"},
            env_digest="hmac-sha256:" + "0" * 64,
            version="v1.25.3",
            status="ready",
            hostname=f"node-{n}",
            host_key="SHA256:" + "a" * 43,
        ).to_json()
    return doc


def measure(make_backend, cluster: str) -> dict[str, float]:
    times = {}
    backend = make_backend(cluster)
    start = time.perf_counter()
    with backend.lock("bench"):
        state = backend.read(cluster)
        times["lock + read empty"] = time.perf_counter() - start
        start = time.perf_counter()
        backend.write(document(cluster), state)
        times[f"write {HOSTS} hosts"] = time.perf_counter() - start
        doc = backend.read(cluster)
        previous = copy.deepcopy(doc)
        ips = list(doc["hosts"])
        start = time.perf_counter()
        for n in range(APPENDS):
            backend.append(doc, update_host(ips[n], status="upgraded"))
        times[f"{APPENDS} appends"] = time.perf_counter() - start
        start = time.perf_counter()
        backend.write(doc, previous)
        times["fold journal (write)"] = time.perf_counter() - start
        start = time.perf_counter()
        backend.read(cluster)
        times[f"read {HOSTS} hosts"] = time.perf_counter() - start
    return times


HOLD_LOCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from state.postgres import PostgresBackend
with PostgresBackend(sys.argv[2], "killed").lock("apply"):
    print("locked", flush=True)
    time.sleep(120)
"""


def lock_after_kill(url: str, trials: int = 10) -> list[tuple[float, int]]:
    """Seconds from a holder's death (kill -9) to the lock taken by another client, and the
    failed attempts before: the server drops the lock with the dead client's session."""
    import subprocess

    from state.local import LockError
    from state.postgres import PostgresBackend

    results = []
    for _ in range(trials):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(ROOT), url], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout.readline().strip() == "locked"
        holder.kill()
        holder.wait()
        start, refused = time.perf_counter(), 0
        while True:
            try:
                with PostgresBackend(url, "killed").lock("bench"):
                    break
            except LockError:
                refused += 1
        results.append((time.perf_counter() - start, refused))
    return results


def main() -> None:
    server = PostgresServer().start()
    os.environ["PGPASSWORD"] = server.password
    folder = Path(tempfile.mkdtemp(prefix="sealer-state-bench-"))
    from state.postgres import PostgresBackend

    try:
        results: dict[str, dict[str, list[float]]] = {"local": {}, "postgres": {}}
        for run in range(RUNS):
            cluster = f"bench-{run}"
            makers = {
                "local": lambda c: LocalBackend(folder / f"{c}.json"),
                "postgres": lambda c: PostgresBackend(server.url, c),
            }
            for name, make in makers.items():
                for step, seconds in measure(make, cluster).items():
                    results[name].setdefault(step, []).append(seconds)
        print(f"median of {RUNS} runs; baseline: the local file, same run")
        print(f"{'step':<24} {'local':>10} {'postgres':>10} {'ratio':>7}")
        for step in results["local"]:
            local = statistics.median(results["local"][step])
            pg = statistics.median(results["postgres"][step])
            print(f"{step:<24} {local * 1000:>8.1f}ms {pg * 1000:>8.1f}ms {pg / local:>6.2f}x")
        per_append = statistics.median(results["postgres"][f"{APPENDS} appends"]) / APPENDS
        print(f"postgres: {per_append * 1000:.2f} ms per recorded action")
        after_kill = lock_after_kill(server.url)
        print(
            f"lock taken after the holder's kill -9: median "
            f"{statistics.median(t for t, _ in after_kill) * 1000:.1f} ms (connect included), "
            f"refused attempts before it: {sum(r for _, r in after_kill)} in {len(after_kill)} "
            f"trials"
        )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
