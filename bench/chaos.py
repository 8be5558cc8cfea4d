"""Benchmark: faults at random moments of a first apply on a fleet of sandbox hosts, and what
the next apply does (issue 33). Each run's points are drawn from the seed (printed): the same
seed replays the same run. Needs root (netns sandbox hosts); see tests/chaos.py for what is
checked after each fault.

    .venv/bin/python bench/chaos.py                       # 60 hosts, faults a-f, a new seed
    .venv/bin/python bench/chaos.py --seed 7 --faults b --kill-points 10
    .venv/bin/python bench/chaos.py --hosts 20 --faults a --load   # the CPU saturated too

Fault b runs --kill-points times (one kill point per run). Runtimes alternate between
kubernetes and k3s across the runs (3 masters each). Prints one markdown row per run, as
docs/reliability.md keeps them, and exits 1 when a promise was broken.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chaos import FAULTS, Run, cleanup, load_generator, stop_load  # noqa: E402
from tests.pg_server import PostgresServer  # noqa: E402

HEADER = (
    "| fault | seed | cluster | what was hit | the faulted apply | the next apply | "
    "time to converge | promises |\n|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=60)
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", default="abcdef")
    parser.add_argument("--kill-points", type=int, default=10)
    parser.add_argument("--link-down", type=float, default=20.0)
    parser.add_argument("--load", action="store_true", help="saturate the CPU meanwhile")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(
        f"seed {seed}, {args.hosts} hosts, faults {args.faults}"
        + (", CPU saturated" if args.load else "")
    )
    print(HEADER, flush=True)
    postgres = PostgresServer().start() if "d" in args.faults else None
    load = load_generator() if args.load else []
    broken = 0
    runs = [(f, p) for f in args.faults for p in (range(args.kill_points) if f == "b" else [None])]
    try:
        for index, (fault, point) in enumerate(runs):
            if fault not in FAULTS:
                parser.error(f"--faults: {fault!r} is not one of {''.join(FAULTS)}")
            runtime = ("kubernetes", "k3s")[index % 2]
            folder = Path(tempfile.mkdtemp(prefix=f"sealer-chaos-{fault}-"))
            started = time.monotonic()
            try:
                outcome = Run(
                    folder, fault, seed, args.hosts, args.masters, runtime,
                    link_down=args.link_down, postgres=postgres, point=point,
                ).run()  # fmt: skip
            finally:
                cleanup(folder)
            broken += bool(outcome.problems)
            print(
                outcome.row() + f" <!-- run took {time.monotonic() - started:.0f} s -->", flush=True
            )
    finally:
        stop_load(load)
        if postgres is not None:
            postgres.stop()
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
