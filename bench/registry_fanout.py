"""Benchmark: 20 sandbox hosts (1 master + 19 workers) and a ClusterImage carrying 100 MB of
container images, served by the cluster's registry, against copying the same blobs to every
host with OpenSSH, measured in the same run.

Per round:
- `sealer apply` of the k3s sandbox image without container images (the cluster work alone);
- `sealer apply` of the same image with the container images (the registry/ folder goes to
  the master only; every host gets its runtime configuration);
- every host pulling all the images from sea.hub:5000 with skopeo, in parallel (what the
  kubelets do, on demand, instead of receiving a copy);
- OpenSSH: the registry/ folder as one tar stream to every host in parallel (`tar | ssh tar x`).
Needs root (sandbox hosts), skopeo and the vendored registry (scripts/setup).

    .venv/bin/python bench/registry_fanout.py              # 20 hosts, 4 x 25 MB, 3 runs
    .venv/bin/python bench/registry_fanout.py --hosts 5 --runs 1 --mb 20
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

from bench.apply_fanout import sealer, ssh_args  # noqa: E402
from tests.source_registry import oci_image, push, source_registry  # noqa: E402

IMAGES = 4


def parallel(addresses: list[str], one) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(addresses)) as pool:
        list(pool.map(one, addresses))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100, help="MB of container images in all")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sealer-registry-bench-"))
    env = {**os.environ, "SEALER_HOME": str(folder / "home"), "NO_COLOR": "1"}
    env.pop("SEALER_SANDBOX_DIR", None)
    os.environ.update({"SEALER_HOME": env["SEALER_HOME"]})
    from sandbox import hosts as sandbox

    try:
        started = sandbox.up(args.hosts)
        addresses = [h.address for h in started]
        ssh = ["ssh", *ssh_args(sandbox.key_path())]

        # The image: IMAGES images of random (incompressible) layers from a source registry.
        layout, context = folder / "oci", folder / "ctx"
        context.mkdir()
        each = args.mb * 1_000_000 // IMAGES
        with source_registry(folder / "source") as address:
            names = []
            for n in range(IMAGES):
                oci_image(layout, f"i{n}", [{f"data{n}": os.urandom(each)}])
                push(layout, f"i{n}", address, f"bench/app{n}:v1")
                names.append(f"bench/app{n}:v1")
            (context / "imageList").write_text("".join(f"{address}/{n}\n" for n in names))
            base = ROOT / "examples" / "images" / "k3s-v1.25.3"
            (context / "Kubefile").write_text(f"FROM {base}\n")
            build = sealer("build", "-t", "bench-offline:v1", str(context), env=env)
        registry = folder / "home" / "images" / "bench-offline:v1" / "rootfs" / "registry"
        size = sum(p.stat().st_size for p in registry.rglob("*") if p.is_file())
        print(
            f"{args.hosts} hosts, {IMAGES} container images, registry/ {size / 1e6:.0f} MB "
            f"(build with the copy: {build:.1f}s)"
        )

        def clusterfile(image: str) -> str:
            path = folder / f"Clusterfile-{image.replace(':', '-').replace('/', '_')}"
            path.write_text(sandbox.clusterfile(addresses, image, masters=1, name="regbench"))
            return str(path)

        plain, offline = clusterfile(str(base)), clusterfile("bench-offline:v1")

        def apply(path: str) -> float:
            os.sync()
            took = sealer("apply", "-f", path, "--auto-approve", "--parallelism",
                          str(args.hosts), env=env)  # fmt: skip
            return took

        def destroy(path: str) -> None:
            sealer("destroy", "-f", path, "--auto-approve", env=env)

        def pull_all() -> float:
            def one(a: str) -> None:
                script = " && ".join(
                    f"skopeo copy -q docker://sea.hub:5000/{n} dir:/tmp/pull-{i}"
                    for i, n in enumerate(names)
                )
                subprocess.run([*ssh, f"root@{a}", f"rm -rf /tmp/pull-* && {script}"], check=True)

            return parallel(addresses, one)

        def openssh_copy() -> float:
            os.sync()

            def one(a: str) -> None:
                tar = subprocess.Popen(["tar", "cf", "-", "-C", str(registry), "."],
                                       stdout=subprocess.PIPE)  # fmt: skip
                subprocess.run([*ssh, f"root@{a}", "mkdir -p /tmp/copy && tar xf - -C /tmp/copy"],
                               stdin=tar.stdout, check=True)  # fmt: skip
                tar.wait()

            took = parallel(addresses, one)
            parallel(addresses, lambda a: subprocess.run([*ssh, f"root@{a}", "rm -rf /tmp/copy"]))
            return took

        pulls = f"{args.hosts} hosts pull"
        print(f"{'run':>3} {'apply no images':>16} {'apply + registry':>17} {pulls:>14} "
              f"{'openssh copy':>13}")  # fmt: skip
        rows = []
        for run in range(1, args.runs + 1):
            t_plain = apply(plain)
            destroy(plain)
            t_offline = apply(offline)
            t_pull = pull_all()
            destroy(offline)
            t_copy = openssh_copy()
            rows.append((t_plain, t_offline, t_pull, t_copy))
            print(f"{run:>3} {t_plain:>15.2f}s {t_offline:>16.2f}s {t_pull:>13.2f}s "
                  f"{t_copy:>12.2f}s")  # fmt: skip
        t_pull, t_copy = (statistics.median(r[i] for r in rows) for i in (2, 3))
        extra = statistics.median(r[1] - r[0] for r in rows)  # paired: same run, same noise
        print(
            f"median: the registry adds {extra:.2f}s to the apply ({extra / t_copy:.2f}x the "
            f"OpenSSH copy of the same blobs to every host, {t_copy:.2f}s); all {args.hosts} "
            f"hosts pulling every image from it take {t_pull:.2f}s ({t_pull / t_copy:.2f}x)"
        )
    finally:
        sandbox.down()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
