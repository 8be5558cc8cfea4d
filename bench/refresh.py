"""Benchmark: `sealer drift` (a full refresh) of a 20-host sandbox cluster, beside plain OpenSSH
running one command on all 20 hosts in parallel, in the same run. Needs root (sandbox hosts).

    .venv/bin/python bench/refresh.py             # 20 hosts, 5 runs
    .venv/bin/python bench/refresh.py --hosts 10 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apply_fanout import ssh_args  # noqa: E402  (bench/ is this script's folder)


def timed(argv: list[str], env: dict, ok=(0,)) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def openssh_fanout(addresses: list[str], key: Path) -> float:
    def one(address: str) -> None:
        subprocess.run(
            ["ssh", *ssh_args(key), f"root@{address}", "hostname"],
            check=True,
            capture_output=True,
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(len(addresses)) as pool:
        list(pool.map(one, addresses))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sealer-refresh-"))
    env = {**os.environ, "SEALER_HOME": str(folder / "home"), "NO_COLOR": "1"}
    env.pop("SEALER_SANDBOX_DIR", None)
    os.environ["SEALER_HOME"] = env["SEALER_HOME"]
    from sandbox import hosts as sandbox

    sealer = str(ROOT / ".venv" / "bin" / "sealer")
    try:
        addresses = [h.address for h in sandbox.up(args.hosts)]
        clusterfile = folder / "Clusterfile"
        clusterfile.write_text(
            sandbox.clusterfile(
                addresses,
                str(ROOT / "examples" / "images" / "k3s-v1.25.3"),
                masters=1,
                name="refresh",
            )
        )
        timed(
            [
                sealer,
                "apply",
                "-f",
                str(clusterfile),
                "--auto-approve",
                "--parallelism",
                str(args.hosts),
            ],
            env,
        )
        drift = [sealer, "drift", "-f", str(clusterfile)]
        timed(drift, env)  # warm caches
        print(f"{args.hosts} hosts (1 master + {args.hosts - 1} workers, k3s sandbox image)")
        print(f"{'run':>3} {'openssh 1 cmd x N':>18} {'sealer drift':>13} {'ratio':>6}")
        bases, refreshes = [], []
        for run in range(1, args.runs + 1):
            bases.append(openssh_fanout(addresses, sandbox.key_path()))
            refreshes.append(timed(drift, env))
            print(
                f"{run:>3} {bases[-1]:>17.3f}s {refreshes[-1]:>12.3f}s "
                f"{refreshes[-1] / bases[-1]:>5.2f}x"
            )
        base, refresh = statistics.median(bases), statistics.median(refreshes)
        print(
            f"median: openssh {base:.3f}s, sealer drift {refresh:.3f}s ({refresh / base:.2f}x); "
            f"floor: refresh under 2 s"
        )
    finally:
        sandbox.down()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
