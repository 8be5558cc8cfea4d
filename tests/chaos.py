"""Faults at moments drawn from a seed during a first apply, and what must hold after each.

Shared by bench/chaos.py (60 hosts, every fault) and tests/e2e/test_chaos.py (a few hosts).
A run: fresh netns sandbox hosts, a Clusterfile of M masters and the rest workers, `sealer
apply --json` with the fault injected when the apply reaches a point drawn from the seed
(`random.Random(f"{seed}-{fault}")`: the same seed replays the same points), then:

- the state reads, and every host its journal ever recorded is in it;
- a plan that still lists a dead host exits 1 and names every dead host (2, with a warning
  naming them, when none of them had joined);
- one apply of the Clusterfile without the dead workers converges (its duration is the row's
  "time to converge"); a dead master (fault f) is powered on again instead (its services start
  as at boot): etcd already counted its vote, and without it there is no quorum to remove it;
  drift is then clean and a plan has no changes;
- the state's serial, sampled all along, never went down;
- every node registered with the API exactly once (the control plane's own history);
- every live host's copy of the image is whole (nothing half-written was trusted).

Faults: a) 10% of the hosts (workers) die whole; b) the operator is SIGKILLed; c) a joining host's link
goes down (20 s); d) the PostgreSQL backend restarts; e) the state's disk fills up; f) a
joined master dies while another master joins.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from executors.distribute import rootfs_dir
from sandbox import hosts as sandbox

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "images"
FAULTS = {
    "a": "10% of the hosts die whole",
    "b": "the operator is SIGKILLed",
    "c": "a joining host's link goes down",
    "d": "the PostgreSQL backend restarts",
    "e": "the state's disk is full",
    "f": "a master dies while another joins",
}
CLUSTER = "chaos"
JOINS = ("kubeadm init --config", "kubeadm join")  # not `kubeadm init phase upload-certs`


@dataclass
class Outcome:
    """One row of docs/reliability.md's chaos table."""

    fault: str
    seed: int
    runtime: str
    hosts: int
    hit: str = ""  # what the fault hit, and when
    first_apply: str = ""  # how the faulted apply ended
    first_code: int | None = None  # its exit code (-9: killed)
    next_apply: str = ""  # what the apply after it did
    converge_s: float = 0.0  # how long the converging apply took
    problems: list[str] = field(default_factory=list)  # broken promises (empty: all held)

    def row(self) -> str:
        held = "all held" if not self.problems else "BROKEN: " + "; ".join(self.problems)
        return (
            f"| {self.fault}) {FAULTS[self.fault]} | {self.seed} | {self.runtime}, "
            f"{self.hosts} hosts | {self.hit} | {self.first_apply} | {self.next_apply} | "
            f"{self.converge_s:.0f} s | {held} |"
        )


class Run:
    """One faulted apply on fresh hosts, and its recovery."""

    def __init__(
        self,
        folder: Path,
        fault: str,
        seed: int,
        hosts: int,
        masters: int = 3,
        runtime: str = "kubernetes",
        link_down: float = 20.0,
        postgres=None,  # tests.pg_server.PostgresServer, for fault d
        point: int | None = None,  # b: which of the kill points (each its own draw)
    ):
        self.folder = folder
        self.fault = fault
        self.rng = random.Random(f"{seed}-{fault}" + (f"-{point}" if point is not None else ""))
        self.outcome = Outcome(fault, seed, runtime, hosts)
        self.count, self.masters_count, self.runtime = hosts, masters, runtime
        self.link_down = link_down
        self.postgres = postgres
        self.dead: list[int] = []
        self.restore: list[int] = []  # dead masters powered on again before the next apply
        self.events: list[dict] = []
        self.serials: list[int] = []
        self.journaled: set[str] = set()
        self._changed = threading.Condition()
        self._sampling = True
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "SEALER_HOME": str(home),
            "SEALER_SSH_CONFIG": str(folder / "no-ssh-config"),
        }
        self.env.pop("SSH_AUTH_SOCK", None)
        self.state_args: list[str] = []
        self.state_file: Path | None = None
        if fault == "d":
            self.env["PGPASSWORD"] = postgres.password
            self.state_args = ["--backend", postgres.url]
        else:
            state_folder = folder / "state"
            state_folder.mkdir(exist_ok=True)
            if fault == "e":  # a small disk of its own, filled at the fault
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(state_folder)],
                    check=True,
                )
            self.state_file = state_folder / f"{CLUSTER}.json"
            self.state_args = ["--state", str(self.state_file)]

    # ---- the run ----

    def run(self) -> Outcome:
        sandbox.down()
        sandbox.up(self.count, net="netns")
        self.numbers = list(range(1, self.count + 1))
        self.masters = self.numbers[: self.masters_count]
        self.write_clusterfile(self.numbers)
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            self._faulted_apply()
            self._recover()
        finally:
            self._sampling = False
            sampler.join()
            if self.fault == "e":
                subprocess.run(["umount", "-l", str(self.folder / "state")], check=False)
        self._check_serials()
        return self.outcome

    def write_clusterfile(self, numbers: list[int]) -> None:
        masters = [_address(n) for n in numbers if n in self.masters]
        workers = [_address(n) for n in numbers if n not in self.masters]
        groups = [{"ips": masters, "roles": ["master"]}]
        if workers:
            groups.append({"ips": workers, "roles": ["node"]})
        doc = {
            "apiVersion": "sealer.io/v2",
            "kind": "Cluster",
            "metadata": {"name": CLUSTER},
            "spec": {
                "image": str(IMAGES / f"{self.runtime}-v1.25.3"),
                "ssh": {"user": "root", "pk": str(sandbox.key_path())},
                "hosts": groups,
            },
        }
        (self.folder / "Clusterfile").write_text(yaml.safe_dump(doc, sort_keys=False))

    def sealer(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sealer_cli.main", *args, *self._where()],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _where(self) -> list[str]:
        return ["-f", str(self.folder / "Clusterfile"), *self.state_args]

    def _faulted_apply(self) -> None:
        argv = [sys.executable, "-m", "sealer_cli.main", "apply", "--auto-approve", "--json"]
        proc = subprocess.Popen(
            [*argv, *self._where()],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = threading.Thread(target=self._read_events, args=(proc,), daemon=True)
        reader.start()
        err_reader = ThreadPoolExecutor(1).submit(proc.stderr.read)
        try:
            getattr(self, f"_fault_{self.fault}")(proc)
            code = proc.wait(timeout=1800)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=30)
        stderr = err_reader.result(timeout=30)
        self.outcome.first_code = code
        failed = sum(e["type"] == "apply_errored" for e in self.events)
        done = sum(e["type"] == "apply_complete" for e in self.events)
        if code == -signal.SIGKILL:
            self.outcome.first_apply = f"killed after {done} actions"
        else:
            last = stderr.strip().splitlines()[-1][:160] if stderr.strip() else ""
            self.outcome.first_apply = f"exit {code}: {done} done, {failed} failed" + (
                f" ({last})" if code and last else ""
            )

    def _read_events(self, proc) -> None:
        for line in proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        with self._changed:
            self.events.append({"type": "__end__"})
            self._changed.notify_all()

    def wait_for(self, test, timeout: float = 1800) -> dict | None:
        """The first event for which test(event) holds (None if the apply ended first)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while time.monotonic() < deadline:
                for event in self.events[seen:]:
                    if test(event):
                        return event
                seen = len(self.events)
                if self.events and self.events[-1].get("type") == "__end__":
                    return None
                self._changed.wait(0.2)
        return None

    def _planned_actions(self) -> list[dict]:
        planned = self.wait_for(lambda e: e.get("type") == "planned", 300)
        return planned["plan"]["actions"] if planned else []

    def _after_finished(self, count: int, proc) -> bool:
        """Wait until `count` actions ended; False when the apply ended first."""
        ends = ("apply_complete", "apply_errored", "apply_skipped")
        with self._changed:
            while sum(e.get("type") in ends for e in self.events) < count:
                if self.events and self.events[-1].get("type") == "__end__":
                    return False
                self._changed.wait(0.2)
        return proc.poll() is None

    def _hit(self, text: str) -> None:
        self.outcome.hit += ("; " if self.outcome.hit else "") + text

    # ---- the faults ----

    def _fault_a(self, proc) -> None:
        """10% of the hosts (at least one) each die at a point of its own: workers; a master's
        death is fault f. (A master that dies between kubeadm's member add and its etcd's first
        start takes etcd's quorum for good: no reboot brings that member up, and no join can
        run without the quorum; only etcd's disaster recovery helps, which sealer does not do.)"""
        count = max(1, round(self.count / 10))
        workers = [n for n in self.numbers if n not in self.masters]
        victims = self.rng.sample(workers, min(count, len(workers)))
        total = len(self._planned_actions())
        points = sorted((self.rng.randint(1, max(1, total - 1)), n) for n in victims)
        for point, n in points:
            if not self._after_finished(point, proc):
                break
            self._power_off(n, f"after {point}/{total} actions")

    def _fault_b(self, proc) -> None:
        total = len(self._planned_actions())
        point = self.rng.randint(1, max(1, total - 1))
        if self._after_finished(point, proc):
            time.sleep(self.rng.uniform(0, 0.5))
            proc.send_signal(signal.SIGKILL)
            self._hit(f"operator killed after {point}/{total} actions")
            self._snapshot_journal()

    def _fault_c(self, proc) -> None:
        workers = [n for n in self.numbers if n not in self.masters]
        victim = self.rng.choice(workers)
        address = _address(victim)
        started = self.wait_for(
            lambda e: (
                e.get("type") == "apply_start"
                and e["hook"]["host"] == address
                and e["hook"]["kind"].startswith("join")
            )
        )
        if started is None:
            return
        time.sleep(self.rng.uniform(0, 1.0))
        host = self._host(victim)
        sandbox.set_link(host, False)
        self._hit(f"{address}'s link down {self.link_down:g} s during its join")
        time.sleep(self.link_down)
        sandbox.set_link(host, True)

    def _fault_d(self, proc) -> None:
        total = len(self._planned_actions())
        point = self.rng.randint(1, max(1, total - 1))
        if self._after_finished(point, proc):
            self._hit(f"PostgreSQL restarted after {point}/{total} actions")
            self.postgres.restart()

    def _fault_e(self, proc) -> None:
        total = len(self._planned_actions())
        point = self.rng.randint(1, max(1, total - 1))
        if self._after_finished(point, proc):
            filler = self.folder / "state" / "filler"
            with open(filler, "wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            self._hit(f"state disk full after {point}/{total} actions")
            proc.wait(timeout=1800)
            self._snapshot_journal()
            filler.unlink()

    def _fault_f(self, proc) -> None:
        """When a master starts to join while another one has joined, that one dies."""
        joined: list[str] = []

        def second_join(event) -> bool:
            hook = event.get("hook") or {}
            if hook.get("kind") != "join_master":
                return False
            if event["type"] == "apply_complete":
                joined.append(hook["host"])
            return event["type"] == "apply_start" and any(h != hook["host"] for h in joined)

        started = self.wait_for(second_join)
        if started is None:
            return
        victim = next(n for n in self.masters if _address(n) in joined)
        time.sleep(self.rng.uniform(0, 1.0))
        self._power_off(victim, f"while {started['hook']['host']} joins")

    def _power_off(self, n: int, when: str) -> None:
        self._snapshot_journal()
        sandbox.power_off(self._host(n))
        self.dead.append(n)
        if n in self.masters:  # only fault f kills one, while another master joins:
            # etcd counts the dead one's vote (kubeadm adds the member first), and without
            # it there is no quorum to remove it, so it must come back.
            self.restore.append(n)
        role = "master" if n in self.masters else "worker"
        self._hit(f"{role} {_address(n)} died {when}")

    def _host(self, n: int):
        return next(h for h in sandbox.hosts() if h.number == n)

    # ---- what the state says, all along ----

    def _sample(self) -> None:
        while self._sampling:
            with contextlib.suppress(Exception):
                serial, journal = self._read_state()
                if serial is not None:
                    self.serials.append(serial)
                self.journaled |= journal
            time.sleep(0.2)

    def _snapshot_journal(self) -> None:
        with contextlib.suppress(Exception):
            self.journaled |= self._read_state()[1]

    def _read_state(self) -> tuple[int | None, set[str]]:
        """The stored serial and the hosts the journal recorded (set_host), read raw."""
        if self.postgres is not None:
            rows = self.postgres.psql(
                f"SELECT serial FROM sealer.states WHERE cluster = '{CLUSTER}'"
            ).split()
            patches = self.postgres.psql(
                f"SELECT patch->>'ip' FROM sealer.journal WHERE cluster = '{CLUSTER}' "
                "AND patch->>'op' = 'set_host'"
            ).split()
            return (int(rows[0]) if rows else None), set(patches)
        serial = None
        if self.state_file.exists():
            serial = json.loads(self.state_file.read_text())["serial"]
        journal = self.state_file.with_name(self.state_file.name + ".journal")
        hosts = set()
        if journal.exists():
            for line in journal.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    patch = json.loads(line)["patch"]
                    if patch["op"] == "set_host":
                        hosts.add(patch["ip"])
        return serial, hosts

    # ---- after the fault ----

    def _recover(self) -> None:
        shown = self.sealer("show", "--json")
        if shown.returncode != 0:
            self.outcome.problems.append(f"the state does not read: {shown.stderr.strip()}")
            return
        recorded = set(json.loads(shown.stdout)["hosts"])
        lost = self.journaled - recorded
        if lost:
            self.outcome.problems.append(f"journaled but not in the state: {sorted(lost)}")
        if self.dead:
            # Dead nodes stop the plan (exit 1), naming every dead host; dead hosts that never
            # joined alone are named in a warning over a plan that joins them again (exit 2).
            plan = self.sealer("plan", "--detailed-exitcode", "--ssh-timeout", "3s")
            said = plan.stdout + plan.stderr
            unnamed = [_address(n) for n in self.dead if _address(n) not in said]
            expected = 1 if any(_address(n) in recorded for n in self.dead) else 2
            if plan.returncode != expected or unnamed:
                self.outcome.problems.append(
                    f"a plan with dead hosts exited {plan.returncode}, naming all but {unnamed}"
                )
        removed = ""
        if self.restore:  # powered on, their disks as they were: etcd needs their votes
            sandbox.up(self.count, net="netns")
            self._wait_for_control_plane()  # as an operator waits for `kubectl get nodes`
            removed = f", {len(self.restore)} dead master(s) restored"
            self.dead = [n for n in self.dead if n not in self.restore]
        if self.dead:
            removed += f", {len(self.dead)} dead removed"
        live = [n for n in self.numbers if n not in self.dead]
        self.write_clusterfile(live)
        started = time.monotonic()
        applied = self.sealer("apply", "--auto-approve", "--ssh-timeout", "5s")
        self.outcome.converge_s = time.monotonic() - started
        if applied.returncode != 0:
            lines = applied.stderr.strip().splitlines() or [""]
            last = next((x for x in lines if x.strip().startswith("failed:")), lines[-1])[:300]
            self.outcome.next_apply = f"exit {applied.returncode}: {last}"
            self.outcome.problems.append("the next apply did not converge")
            return
        self.outcome.next_apply = "converged" + removed
        drift = self.sealer("drift")
        if drift.returncode != 0:
            self.outcome.problems.append(f"drift after convergence: {drift.stdout[-300:]}")
        plan = self.sealer("plan", "--detailed-exitcode")
        if plan.returncode != 0:
            self.outcome.problems.append(f"a plan after convergence: exit {plan.returncode}")
        self._check_registrations(live)
        self._check_copies(live)

    def _wait_for_control_plane(self, timeout: float = 180) -> None:
        url = f"http://{_address(self.masters[0])}:6443/history"  # read from etcd: a quorum
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=10) as answer:
                if answer.status == 200:
                    return
            time.sleep(1)
        self.outcome.problems.append(f"the control plane did not answer {timeout:g} s after")

    def _check_registrations(self, live: list[int]) -> None:
        master = next(n for n in self.masters if n in live)
        url = f"http://{_address(master)}:6443/history"
        with urllib.request.urlopen(url, timeout=30) as response:
            history = json.loads(response.read())
        registered: dict[str, int] = {}
        for event in history:
            if event["event"] == "node_registered":
                registered[event["node"]] = registered.get(event["node"], 0) + 1
        twice = {name: n for name, n in registered.items() if n > 1}
        if self.runtime == "kubernetes":  # and no kubeadm init or join once it had registered
            at = {e["node"]: e["time"] for e in history if e["event"] == "node_registered"}
            for n in live:
                again = [
                    entry for entry in _command_log(n)
                    if " ".join(entry["argv"]).startswith(JOINS)
                    and entry["time"] > at.get(f"sandbox-{n}", float("inf"))
                ]  # fmt: skip
                if again:
                    twice[f"sandbox-{n} (kubeadm after registering)"] = len(again) + 1
        missing = [n for n in live if f"sandbox-{n}" not in registered]
        if twice:
            self.outcome.problems.append(f"nodes registered more than once: {twice}")
        if missing:
            self.outcome.problems.append(f"live hosts never registered: {missing}")

    def _check_copies(self, live: list[int]) -> None:
        """Every file of the image, on every live host, byte for byte (but registry/: its
        blobs go to the serving masters' registry folder, beside the rootfs)."""
        image = IMAGES / f"{self.runtime}-v1.25.3"
        expected = {}
        for path in sorted(p for p in image.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = path.relative_to(image).as_posix()
            skipped = relative == "Metadata" or relative.startswith("registry/")
            if not skipped and not relative.endswith(".tmpl"):
                expected[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        read = ["sh", "-c", f"cd {rootfs_dir(CLUSTER)} && xargs -d '\\n' sha256sum --"]
        listing = "\n".join(expected)

        def check(n: int) -> str:
            try:  # inside the host, as _command_log reads it
                out = sandbox.run_in(self._host(n), read, input=listing).stdout
            except subprocess.CalledProcessError as e:  # a file missing: what was read counts
                out = e.stdout or ""
            seen = dict(line.split("  ", 1)[::-1] for line in out.splitlines())
            bad = [f for f, digest in expected.items() if seen.get(f) != digest]
            return f"{_address(n)}: {len(bad)} file(s) differ, e.g. {bad[0]}" if bad else ""

        with ThreadPoolExecutor(16) as pool:
            broken = [b for b in pool.map(check, live) if b]
        if broken:
            self.outcome.problems.append("half-written copies kept: " + "; ".join(broken[:3]))

    def _check_serials(self) -> None:
        went_down = [(a, b) for a, b in itertools.pairwise(self.serials) if b < a]
        if went_down:
            self.outcome.problems.append(f"the serial went down: {went_down[:3]}")


def _address(n: int) -> str:
    return sandbox.address(n, "netns")


def _command_log(n: int) -> list[dict]:
    """The stand-ins' record of every command run on host n (read from inside the host)."""
    host = next(h for h in sandbox.hosts() if h.number == n)
    out = sandbox.run_in(
        host, ["sh", "-c", "cat /var/log/sandbox-standin/commands.log 2>/dev/null; true"]
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def load_generator(processes: int | None = None) -> list[subprocess.Popen]:
    """Busy loops on every core (twice over), as other work saturating the machine."""
    count = processes or 2 * (os.cpu_count() or 2)
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.kill()
        worker.wait()


def cleanup(folder: Path) -> None:
    sandbox.down()
    shutil.rmtree(folder, ignore_errors=True)
