"""Benchmark: a fleet of sandbox hosts from one machine (issue 19), everything in one run:

  sandbox up N            how long the hosts take to start
  openssh copy+init       scp the image tarball to every host, unpack it, run its init.sh
  sealer apply (first)    1 master + N-1 workers, k3s sandbox image
  sealer drift x3         the first pays the SSH handshakes; the next two reuse the connections
  sealer apply (no-op)    with its refresh
  openssh hostname        one command on every host, fresh connections, 200 at a time
  changed key             one host's key regenerated: the next drift must still refuse it

It prints each time, sealer's peak memory per command, and the ratios against OpenSSH. Needs
root (sandbox hosts). The image is the k3s sandbox image without its registry binary and with
etcd linked from this machine (the hosts' root is an overlay of it): 60 MB copied to each of
1,000 hosts would not fit this disk. Both sides copy the same slim image.

    .venv/bin/python bench/fleet.py                 # 1,000 hosts
    .venv/bin/python bench/fleet.py --hosts 120

sealer applies with --parallelism 40 here (the default of sealer is 10, as Terraform's): on
these two cores 20 took longer, and 100 joins at once overloaded the hosts' stand-in agents. The
OpenSSH baseline keeps up to 200 hosts in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apply_fanout import baseline, ssh_args  # noqa: E402  (bench/ is this script's folder)

LINKED = Path("/var/tmp/sealer-bench-fleet")  # etcd, where every host sees it


def slim_image(folder: Path) -> Path:
    image = folder / "image"
    shutil.copytree(ROOT / "examples" / "images" / "k3s-v1.25.3", image, symlinks=True)
    (image / "bin" / "registry").unlink()
    LINKED.mkdir(parents=True, exist_ok=True)
    etcd = image / "lib" / "sandbox-standin" / "etcd"
    shutil.copy2(etcd, LINKED / "etcd")
    etcd.unlink()
    etcd.symlink_to(LINKED / "etcd")
    return image


def timed(argv: list[str], env: dict, ok=(0,)) -> tuple[float, int, str]:
    """Seconds, peak RSS in MB (GNU time), stdout."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
            env=env,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        peak_kb = int(rss.read().strip().splitlines()[-1] or 0)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, peak_kb // 1024, done.stdout


def openssh_hostname(addresses: list[str], key: Path) -> float:
    def one(address: str) -> None:
        subprocess.run(["ssh", *ssh_args(key), f"root@{address}", "hostname"], check=True,
                       capture_output=True)  # fmt: skip

    start = time.perf_counter()
    with ThreadPoolExecutor(min(len(addresses), 200)) as pool:
        list(pool.map(one, addresses))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=40, help="sealer --parallelism")
    parser.add_argument(
        "--net", choices=("netns", "loopback"), default="netns", help="loopback: 254 at most"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sealer-fleet-"))
    env = {**os.environ, "SEALER_HOME": str(folder / "home"), "NO_COLOR": "1"}
    env["SEALER_SANDBOX_NET"] = args.net  # netns: 198.18.0.0/15, room for thousands
    env.pop("SEALER_SANDBOX_DIR", None)
    os.environ.update({k: env[k] for k in ("SEALER_HOME", "SEALER_SANDBOX_NET")})
    from sandbox import hosts as sandbox

    sealer = str(ROOT / ".venv" / "bin" / "sealer")
    rows = []

    def report(what: str, seconds: float, peak_mb: int | None = None) -> None:
        rows.append((what, seconds, peak_mb))
        memory = f"{peak_mb:>5} MB" if peak_mb is not None else ""
        print(f"{what:<34} {seconds:>8.2f}s {memory}", flush=True)

    try:
        start = time.perf_counter()
        addresses = [h.address for h in sandbox.up(args.hosts, timeout=120)]
        report(f"sandbox up {args.hosts}", time.perf_counter() - start)
        image = slim_image(folder)
        tar_path = folder / "image.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(image, arcname=".")
        report("openssh copy+init", baseline(addresses, image, sandbox.key_path(), tar_path))

        clusterfile = folder / "Clusterfile"
        clusterfile.write_text(sandbox.clusterfile(addresses, str(image), name="fleet"))
        apply = [sealer, "apply", "-f", str(clusterfile), "--auto-approve"]
        apply += ["--parallelism", str(args.parallelism)]
        seconds, peak, _ = timed(apply, env)
        report("sealer apply (first)", seconds, peak)
        drift = [sealer, "drift", "-f", str(clusterfile)]
        for n in (1, 2, 3):
            seconds, peak, _ = timed(drift, env)
            report(f"sealer drift #{n}", seconds, peak)
        seconds, peak, _ = timed(apply, env)
        report("sealer apply (no-op, refreshed)", seconds, peak)
        report("openssh hostname, all hosts", openssh_hostname(addresses, sandbox.key_path()))

        changed = sandbox.hosts()[len(addresses) // 2]
        sandbox.regenerate_host_key(changed)
        seconds, peak, out = timed([*drift, "--json"], env, ok=(2,))
        kinds = {(f["kind"], f["host"]) for f in json.loads(out)["drift"]}
        refused = ("host_key_changed", changed.address) in kinds
        report(f"sealer drift, {changed.address} rekeyed", seconds, peak)
        print(f"changed host key refused: {'yes' if refused else 'NO'}")

        times = {what: seconds for what, seconds, _ in rows}
        repeated = max(times["sealer drift #2"], times["sealer drift #3"])
        print(
            f"\nratios: first apply / openssh copy+init = "
            f"{times['sealer apply (first)'] / times['openssh copy+init']:.2f}x; "
            f"repeated drift / openssh hostname = "
            f"{repeated / times['openssh hostname, all hosts']:.2f}x; "
            f"repeated drift / first drift = {repeated / times['sealer drift #1']:.2f}x"
        )
        print(f"peak memory of sealer: {max(p for _, _, p in rows if p is not None)} MB")
    finally:
        subprocess.run([sealer, "connections", "close"], env=env, capture_output=True)
        sandbox.down()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
