"""Benchmark: a rebuilt image where a share of the files changed (default 10%), on sandbox
hosts: `sealer apply` (sync_rootfs, sending only what changed: executors/delta.py) against
plain OpenSSH re-copying the whole rootfs to every host (scp + ssh tar x, all in parallel),
measured alternately in the same run. Needs root (sandbox hosts).

    .venv/bin/python bench/sync_delta.py                      # 20 hosts, 3 runs, loopback
    .venv/bin/python bench/sync_delta.py --net netns --rate 100mbit --operator-rate 100mbit
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.apply_fanout import build_image, sealer, ssh_args  # noqa: E402


def full_copy(addresses: list[str], key: Path, tar_path: Path) -> float:
    """Plain OpenSSH: the whole tarball to every host, unpacked, all hosts at once."""

    def one(address: str) -> None:
        subprocess.run(
            ["scp", "-q", *ssh_args(key), str(tar_path), f"root@{address}:/tmp/r.tar"], check=True
        )
        subprocess.run(
            [
                "ssh",
                *ssh_args(key),
                f"root@{address}",
                "rm -rf /var/lib/bench && mkdir -p /var/lib/bench && "
                "tar xf /tmp/r.tar -C /var/lib/bench && rm -f /tmp/r.tar",
            ],
            check=True,
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(len(addresses)) as pool:
        list(pool.map(one, addresses))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1, help="share of files changed")
    parser.add_argument("--payload-mib", type=int, default=30)
    parser.add_argument("--net", choices=("loopback", "netns"), default="loopback")
    parser.add_argument("--rate")
    parser.add_argument("--operator-rate")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sealer-sync-"))
    env = {**os.environ, "SEALER_HOME": str(folder / "home"), "NO_COLOR": "1"}
    env.pop("SEALER_SANDBOX_DIR", None)
    os.environ.update({"SEALER_HOME": env["SEALER_HOME"]})
    from sandbox import hosts as sandbox

    try:
        started = sandbox.up(
            args.hosts, rate=args.rate, operator_rate=args.operator_rate, net=args.net
        )
        addresses = [h.address for h in started]
        key = sandbox.key_path()
        image = build_image(folder, args.payload_mib)
        clusterfile = folder / "Clusterfile"
        clusterfile.write_text(sandbox.clusterfile(addresses, str(image), name="sync"))
        sealer("apply", "-f", str(clusterfile), "--auto-approve", env=env)
        blobs = sorted((image / "images" / "bench").iterdir())
        rng = random.Random(7)
        files = sum(1 for p in image.rglob("*") if p.is_file())
        print(
            f"{args.hosts} hosts ({args.net}), {files} files, "
            f"{sum(p.stat().st_size for p in image.rglob('*') if p.is_file()) / 2**20:.1f} MiB, "
            f"{args.share:.0%} of the files changed per run"
        )
        print(f"{'run':>3} {'openssh full copy':>18} {'sealer sync':>12} {'ratio':>6}")
        copies, syncs = [], []
        for run in range(1, args.runs + 1):
            for blob in rng.sample(blobs, max(1, round(files * args.share))):
                blob.write_bytes(rng.randbytes(blob.stat().st_size))
            tar_path = folder / "rootfs.tar"
            with tarfile.open(tar_path, "w") as tar:
                tar.add(image, arcname=".")
            os.sync()
            copies.append(full_copy(addresses, key, tar_path))
            os.sync()
            syncs.append(
                sealer(
                    "apply",
                    "-f",
                    str(clusterfile),
                    "--auto-approve",
                    "--refresh=false",
                    "--parallelism",
                    str(args.hosts),
                    env=env,
                )
            )
            print(
                f"{run:>3} {copies[-1]:>17.2f}s {syncs[-1]:>11.2f}s {syncs[-1] / copies[-1]:>5.2f}x"
            )
        ratios = [s / c for s, c in zip(syncs, copies, strict=True)]
        print(
            f"median: openssh full copy {statistics.median(copies):.2f}s, sealer sync "
            f"{statistics.median(syncs):.2f}s, median ratio {statistics.median(ratios):.2f}x "
            f"(goal: at or below 0.2x)"
        )
    finally:
        sandbox.down()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
