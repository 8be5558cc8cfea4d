"""Benchmark: what a run's open SSH connections cost sealer while they wait (issue 19).

A fleet's apply keeps one connection per host open for the whole run. paramiko's reader thread
wakes every 0.1 s on an idle connection; sealer sets it to executors.driver.IDLE_WAKEUP. This
opens N connections to sandbox hosts, leaves them idle for a while, and measures the CPU the
process spends, with paramiko's 0.1 s (the baseline) and with sealer's setting, in one run.
Needs root (sandbox hosts).

    .venv/bin/python bench/idle_connections.py --hosts 200 --idle 10
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle_cost(addresses: list[str], key: str, wakeup: float, idle: float) -> float:
    """CPU seconds the process spends while N connections sit idle for `idle` seconds."""
    from cluster.model import SSH
    from executors import driver

    driver.IDLE_WAKEUP = wakeup
    run = driver.Driver({a: SSH(key_file=key) for a in addresses})
    try:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda a: run.host(a).run("true"), addresses))
        before = cpu_seconds()
        time.sleep(idle)
        return cpu_seconds() - before
    finally:
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the connections wait")
    args = parser.parse_args()
    os.environ["SEALER_HOME"] = tempfile.mkdtemp(prefix="sealer-idle-")
    os.environ.setdefault("SEALER_SANDBOX_NET", "loopback")
    from executors import driver
    from sandbox import hosts as sandbox

    chosen = driver.IDLE_WAKEUP
    addresses = [h.address for h in sandbox.up(args.hosts, timeout=120)]
    try:
        key = str(sandbox.key_path())
        paramiko = idle_cost(addresses, key, 0.1, args.idle)
        sealer = idle_cost(addresses, key, chosen, args.idle)
    finally:
        sandbox.down()
    print(f"{args.hosts} idle connections for {args.idle:g}s, CPU of this process:")
    print(f"  paramiko's 0.1 s wake-up   {paramiko:7.2f} s")
    print(f"  sealer's {chosen:g} s wake-up    {sealer:7.2f} s")
    print(f"ratio sealer / paramiko: {sealer / max(paramiko, 1e-9):.3f}x")


if __name__ == "__main__":
    main()
