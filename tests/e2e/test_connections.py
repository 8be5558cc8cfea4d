"""End-to-end: the connections a refresh reads over outlive the run (issue 19). A repeated drift
reuses them (same OpenSSH master, no new sshd session on the host); a host whose key changed is
still refused; another state (lineage) gets connections of its own; `--ssh-persist 0` keeps
none; `sealer connections ls|close` show and end them."""

from __future__ import annotations

import json
import os
import stat

from cluster.image import sealer_home
from executors import connections, mux
from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, host, ip
from tests.helpers import sealer


def _kept() -> dict[tuple[str, str], int]:
    """(host, lineage) -> master pid, from `sealer connections ls`."""
    listed = sealer("connections", "ls")
    assert listed.returncode == 0, listed.stderr
    rows = {}
    for line in listed.stdout.splitlines()[1:]:
        address, _user, pid, _key, lineage = line.split()
        rows[(address.rsplit(":", 1)[0], lineage)] = int(pid)
    return rows


def _sshd_sessions(n: int) -> int:
    """The host's per-connection sshd processes (one per SSH connection that logged in)."""
    found = 0
    for pid in host(n).processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found += f.read().startswith(b"sshd: root")
        except OSError:
            pass
    return found


def test_repeated_refresh_reuses_pinned_connections(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3])
    cluster.apply()
    lineage = cluster.state()["lineage"]

    first = cluster.sealer("drift")
    assert first.returncode == 0, first.stdout + first.stderr
    kept = _kept()
    assert set(kept) == {(ip(n), lineage) for n in (1, 2, 3)}
    folder = sealer_home() / "connections"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    sessions = _sshd_sessions(2)

    # sealer's own client of the master's protocol: stdin, both outputs, the exit code
    name = next(f.stem for f in folder.glob("*.json") if json.loads(f.read_text())["host"] == ip(2))
    reuse = connections.Reuse(folder, 600, lineage)
    done = mux.run(reuse.socket_path(name), "cat; echo oops >&2; exit 3", b"in", 30)
    assert done == (3, b"in", b"oops\n")
    assert _sshd_sessions(2) == sessions

    again = cluster.sealer("plan", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr
    assert _kept() == kept  # the same masters
    assert _sshd_sessions(2) == sessions  # and no new login on the host

    # A reinstalled host (new key, its sshd and sessions gone) is refused, not reused.
    pinned = cluster.state()["hosts"][ip(3)]["host_key"]
    sandbox.regenerate_host_key(host(3))
    drift = cluster.sealer("drift", "--json")
    assert drift.returncode == 2, drift.stderr
    changed = [f for f in json.loads(drift.stdout)["drift"] if f["kind"] == "host_key_changed"]
    assert [(f["host"], f["expected"]) for f in changed] == [(ip(3), pinned)]
    assert (ip(3), lineage) not in _kept()
    assert (ip(2), lineage) in _kept()

    # Another state of the same hosts (another lineage) never finds these sockets.
    state_file = cluster.state_path()
    doc = json.loads(state_file.read_text())
    other = "00000000-0000-4000-8000-000000000019"
    doc["lineage"] = other
    state_file.write_text(json.dumps(doc))
    assert cluster.sealer("drift").returncode == 2
    both = _kept()
    assert (ip(1), other) in both and (ip(1), lineage) in both
    assert both[(ip(1), other)] != both[(ip(1), lineage)]

    closed = sealer("connections", "close", ip(1))
    assert closed.stdout.strip() == "Closed 2 connection(s).", closed.stdout + closed.stderr
    assert not any(address == ip(1) for address, _ in _kept())
    closed = sealer("connections", "close")
    assert closed.returncode == 0 and "connection(s)" in closed.stdout
    assert sealer("connections", "ls").stdout == "No SSH connections kept.\n"

    # --ssh-persist 0: the run's own connections only, nothing left behind.
    assert cluster.sealer("drift", "--ssh-persist", "0").returncode == 2
    assert sealer("connections", "ls").stdout == "No SSH connections kept.\n"
    bad = cluster.sealer("drift", "--ssh-persist", "soon")
    assert bad.returncode == 1 and "--ssh-persist" in bad.stderr and "Traceback" not in bad.stderr


def _listener_pid(n: int) -> int:
    """The host's listening sshd (its sessions are `sshd: root@...` processes)."""
    for pid in host(n).processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"sshd: /usr/sbin/sshd "):  # sessions: sshd: USER@...
                    return pid
        except OSError:
            pass
    raise AssertionError(f"no sshd listener on host {n}")


def test_a_kept_connection_does_not_vouch_for_a_key_the_host_no_longer_has(hosts, tmp_path):
    """Issue 33: the host key is replaced and only sshd's listener restarted, so the kept
    connection (and its session) survive; the next drift, reusing connections, still says
    host_key_changed, as a fresh connection would."""
    import signal

    from sandbox.init import HOST_KEY, sshd_command

    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    cluster.apply()
    assert cluster.sealer("drift", "--ssh-persist", "30m").returncode == 0
    lineage = cluster.state()["lineage"]
    kept = _kept()
    assert (ip(2), lineage) in kept
    pinned = cluster.state()["hosts"][ip(2)]["host_key"]

    sandbox.run_in(host(2), ["sh", "-c", f"rm -f {HOST_KEY} {HOST_KEY}.pub && "
                                         f"ssh-keygen -q -t ed25519 -N '' -f {HOST_KEY}"])  # fmt: skip
    os.kill(_listener_pid(2), signal.SIGTERM)  # the listener only: open sessions stay
    sandbox.run_in(host(2), sshd_command(ip(2)))
    assert os.path.exists(f"/proc/{kept[(ip(2), lineage)]}")  # the old master is still up

    drift = cluster.sealer("drift", "--json", "--ssh-persist", "30m")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    changed = [f for f in json.loads(drift.stdout)["drift"] if f["kind"] == "host_key_changed"]
    assert [(f["host"], f["expected"]) for f in changed] == [(ip(2), pinned)]
    assert changed[0]["actual"] and changed[0]["actual"] != pinned
    assert (ip(2), lineage) not in _kept()  # the master that vouched for the old key is gone
    assert (ip(1), lineage) in _kept()  # reuse stays on for the others
