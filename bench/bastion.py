"""Benchmark: hosts behind a bastion against the same hosts reached directly (issue 32).

Netns sandbox hosts: host 1 is the bastion, hosts 2..N+1 the cluster. In the bastion phases
the cluster's hosts are private (`sealer sandbox private`: this machine has no route to
them) and the Clusterfile names the bastion; in the direct phases their route is back and
the Clusterfile has no bastion. Phases alternate, so the machine's load hits both alike.

  drift     N hosts (default 200), one applied cluster, one state per way; after a first
            drift that opens the kept connections, each round times one `sealer drift` each
            way (the bastion's: OpenSSH masters whose ProxyCommand runs through the bastion)
  apply     M hosts (default 20), k3s: each round a first apply (a new state) each way,
            then a destroy (not timed)

It prints the medians and the ratios bastion/direct against the issue's targets (drift 1.5x,
apply 1.3x). Needs root (netns sandbox hosts).

    .venv/bin/python bench/bastion.py
    .venv/bin/python bench/bastion.py --drift-hosts 60 --apply-hosts 10 --rounds 3
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SEALER = [sys.executable, "-m", "sealer_cli.main"]
IMAGE = ROOT / "examples" / "images" / "k3s-v1.25.3"
TARGETS = {"drift": 1.5, "apply": 1.3}


def sealer(*args: str, env: dict, ok=(0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run([*SEALER, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        sys.exit(f"sealer {' '.join(args)} failed ({done.returncode}):\n"
                 f"{done.stdout[-1500:]}\n{done.stderr[-1500:]}")  # fmt: skip
    return elapsed


def address(n: int) -> str:
    """Sandbox host n's address in netns mode (sandbox/network.py)."""
    return str(ipaddress.ip_network("198.18.0.0/15")[1 + n])


def clusterfile(path: Path, name: str, numbers: list[int], key: Path, bastion: bool) -> Path:
    ssh = {"pk": str(key)}
    if bastion:
        ssh["bastion"] = {"address": address(1), "pk": str(key)}
    doc = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "image": str(IMAGE),
            "ssh": ssh,
            "hosts": [
                {"ips": [address(numbers[0])], "roles": ["master"]},
                {"ips": [address(n) for n in numbers[1:]], "roles": ["node"]},
            ],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def private(numbers: list[int], on: bool, env: dict) -> None:
    names = [f"sandbox-{n}" for n in numbers]
    sealer("sandbox", "private", *names, *([] if on else ["--reset"]), env=env)


def drift_rounds(folder: Path, numbers: list[int], key: Path, rounds: int, env: dict) -> dict:
    direct = clusterfile(folder / "direct.yaml", "drift", numbers, key, bastion=False)
    behind = clusterfile(folder / "bastion.yaml", "drift", numbers, key, bastion=True)
    state_d, state_b = str(folder / "direct.json"), str(folder / "bastion.json")
    print(f"apply {len(numbers)} hosts (once, direct)...", flush=True)
    sealer("apply", "--auto-approve", "-f", str(direct), "--state", state_d,
           "--parallelism", "40", env=env)  # fmt: skip
    Path(state_b).write_bytes(Path(state_d).read_bytes())  # one cluster, one state per way
    private(numbers, True, env)  # a no-op apply through the bastion pins its key, as any would
    sealer("apply", "--auto-approve", "-f", str(behind), "--state", state_b, env=env)
    times: dict[str, list[float]] = {"direct": [], "bastion": []}
    for way, path, state in (("direct", direct, state_d), ("bastion", behind, state_b)):
        private(numbers, way == "bastion", env)
        sealer("drift", "-f", str(path), "--state", state, env=env)  # opens the connections
    for _ in range(rounds):
        for way, path, state in (("direct", direct, state_d), ("bastion", behind, state_b)):
            private(numbers, way == "bastion", env)
            times[way].append(sealer("drift", "-f", str(path), "--state", state, env=env))
    private(numbers, False, env)
    sealer("destroy", "--auto-approve", "-f", str(direct), "--state", state_d,
           "--parallelism", "40", env=env)  # fmt: skip
    sealer("connections", "close", env=env)
    return times


def apply_rounds(folder: Path, numbers: list[int], key: Path, rounds: int, env: dict) -> dict:
    times: dict[str, list[float]] = {"direct": [], "bastion": []}
    for r in range(rounds):
        for way in ("direct", "bastion"):
            path = clusterfile(
                folder / f"apply-{way}.yaml", "apply", numbers, key, way == "bastion"
            )
            state = str(folder / f"apply-{way}-{r}.json")
            private(numbers, way == "bastion", env)
            times[way].append(sealer("apply", "--auto-approve", "-f", str(path), "--state", state,
                                     env=env))  # fmt: skip
            sealer("destroy", "--auto-approve", "-f", str(path), "--state", state, env=env)
    private(numbers, False, env)
    return times


def report(name: str, times: dict[str, list[float]]) -> bool:
    direct, behind = statistics.median(times["direct"]), statistics.median(times["bastion"])
    ratio = behind / direct
    ok = ratio <= TARGETS[name]
    print(f"{name:6} direct {direct:6.2f}s  bastion {behind:6.2f}s  ratio {ratio:4.2f}x "
          f"(target <= {TARGETS[name]}x: {'OK' if ok else 'NOT MET'})  "
          f"rounds: direct {[round(t, 2) for t in times['direct']]}, "
          f"bastion {[round(t, 2) for t in times['bastion']]}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drift-hosts", type=int, default=200)
    parser.add_argument("--apply-hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sealer-bench-bastion-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "SEALER_HOME": str(folder / "home"),
            "SEALER_SANDBOX_DIR": str(folder / "sandbox"),
            "SEALER_SANDBOX_NET": "netns",
            "SEALER_SSH_CONFIG": str(folder / "no-ssh-config"),
            "NO_COLOR": "1",
        }
        env.pop("SSH_AUTH_SOCK", None)
        count = 1 + max(args.drift_hosts, args.apply_hosts)
        print(f"sandbox up {count} (netns)...", flush=True)
        subprocess.run([*SEALER, "sandbox", "up", str(count)], env=env, check=True,
                       capture_output=True, cwd=ROOT)  # fmt: skip
        key = folder / "sandbox" / "id_ed25519"
        try:
            drift = drift_rounds(
                folder, list(range(2, 2 + args.drift_hosts)), key, args.rounds, env
            )
            applies = apply_rounds(
                folder, list(range(2, 2 + args.apply_hosts)), key, args.rounds, env
            )
        finally:
            subprocess.run([*SEALER, "connections", "close"], env=env, capture_output=True)
            subprocess.run([*SEALER, "sandbox", "down"], env=env, capture_output=True)
        print(f"bench/bastion.py: {args.drift_hosts} hosts drift, {args.apply_hosts} hosts "
              f"apply, {args.rounds} rounds, alternating")  # fmt: skip
        met = [report("drift", drift), report("apply", applies)]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
