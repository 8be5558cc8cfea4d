"""The PostgreSQL state backend against a real PostgreSQL server (tests/pg_server.py)."""

from __future__ import annotations

import copy
import json
import signal
import socket
import subprocess
import sys
import threading

import pytest

from state.document import set_host, update_host
from state.local import LockError, StateError
from state.postgres import KEEP_VERSIONS, SCHEMA_VERSION, PostgresBackend
from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile
from tests.pg_server import PostgresServer, free_port

# Nothing listens on these loopback addresses; no test here reaches a host.
M = ["127.0.2.1"]
W = ["127.0.2.11", "127.0.2.12"]


@pytest.fixture
def name(request):
    """A cluster name of this test's own, so tests share the server but never a state."""
    return request.node.name.replace("_", "-")[:60]


@pytest.fixture
def clusterfile(tmp_path, name):
    make_image(tmp_path / "image", "v1.25.3")
    return write_clusterfile(tmp_path / "Clusterfile", cluster_doc(M, W, name=name))


def _changed(doc: dict, ip: str) -> dict:
    changed = copy.deepcopy(doc)
    changed["hosts"][ip] = {"roles": ["node"], "status": "joined"}
    return changed


def test_write_journal_and_versions_round_trip(pg_backend, name):
    backend = PostgresBackend(pg_backend, name)
    with backend.lock("apply"):
        first = backend.read(name)
        assert first["serial"] == 0 and first["hosts"] == {}
        doc = _changed(first, "10.0.0.1")
        assert backend.write(doc, first) and doc["serial"] == 1
        backend.append(doc, update_host("10.0.0.1", status="upgraded"))
    reader = PostgresBackend(pg_backend, name)
    with reader.lock("show"):
        seen = reader.read(name)  # the journal entry is replayed on read
        assert seen["serial"] == 1 and seen["hosts"]["10.0.0.1"]["status"] == "upgraded"
        folded = copy.deepcopy(seen)
        assert reader.write(folded, seen)  # same content, but the journal is folded in
        assert folded["serial"] == 2
    for n in range(2, 2 + KEEP_VERSIONS + 3):
        backend = PostgresBackend(pg_backend, name)
        with backend.lock("apply"):
            before = backend.read(name)
            backend.write(_changed(before, f"10.0.0.{n}"), before)
    with backend.lock("state versions"):
        versions = backend.versions()
        current = backend.read(name)
        assert len(versions) == KEEP_VERSIONS
        assert [v[0] for v in versions] == list(
            range(current["serial"] - 1, current["serial"] - 1 - KEEP_VERSIONS, -1)
        )
        older = backend.read_version(versions[-1][0])
        assert older["serial"] == versions[-1][0] and len(older["hosts"]) < len(current["hosts"])


def test_equal_content_writes_nothing_and_keeps_the_serial(pg_backend, name):
    backend = PostgresBackend(pg_backend, name)
    with backend.lock("apply"):
        doc = _changed(backend.read(name), "10.0.0.1")
        backend.write(doc, None)
        again = backend.read(name)
        assert backend.write(copy.deepcopy(again), again) is False
        assert backend.read(name)["serial"] == again["serial"]


def test_schema_is_created_on_first_use_and_a_newer_one_is_refused(postgres, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    postgres.psql("DROP DATABASE IF EXISTS schema_test")
    postgres.psql("CREATE DATABASE schema_test")
    url = postgres.url.rsplit("/", 1)[0] + "/schema_test"
    with PostgresBackend(url, "c").lock("plan"):
        pass
    versions = subprocess.run(
        ["psql", url, "-Atc", "SELECT version FROM sealer.schema_version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions == [str(SCHEMA_VERSION)]
    subprocess.run(
        ["psql", url, "-Atc", "INSERT INTO sealer.schema_version VALUES (99)"], check=True
    )
    newer = PostgresBackend(url, "c")
    with pytest.raises(StateError, match="schema version 99; this sealer knows up to 1"):
        newer.read("c")


def test_password_in_the_url_is_refused_and_never_printed(tmp_path, clusterfile):
    url = "postgres://sealer:hunter2-secret@127.0.0.1:1/sealer"
    result = sealer("plan", "-f", str(clusterfile), "--backend", url)
    assert result.returncode == 1
    assert "remove the password" in result.stderr and "PGPASSWORD" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    malformed = sealer("plan", "-f", str(clusterfile), "--backend", "postgres://u:hunter2@[::1/db")
    assert malformed.returncode == 1 and "not a valid PostgreSQL URL" in malformed.stderr
    assert "hunter2" not in malformed.stdout + malformed.stderr


def test_unreachable_server_is_a_one_line_error(clusterfile):
    port = free_port()
    result = sealer(
        "plan", "-f", str(clusterfile), "--backend", f"postgres://u@127.0.0.1:{port}/db"
    )
    assert result.returncode == 1
    assert f"postgres://u@127.0.0.1:{port}/db: cannot connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_wrong_password_is_a_one_line_error_without_the_password(postgres, clusterfile):
    result = sealer(
        "plan",
        "-f",
        str(clusterfile),
        "--backend",
        postgres.url,
        env={"PGPASSWORD": "not-the-password"},
    )
    assert result.returncode == 1 and "password authentication failed" in result.stderr
    assert "not-the-password" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_backend_and_state_flags_conflict(clusterfile, tmp_path, pg_backend):
    result = sealer("plan", "-f", str(clusterfile), "--state", str(tmp_path / "s.json"))
    assert result.returncode == 0  # the flag wins over $SEALER_BACKEND
    both = sealer(
        "plan", "-f", str(clusterfile), "--state", str(tmp_path / "s.json"), "--backend", pg_backend
    )
    assert both.returncode == 1 and "give one of them" in both.stderr


def test_lock_held_by_a_sealer_in_another_folder_then_kill_9_frees_it(tmp_path, pg_backend, name):
    """Two sealer processes in different working folders share one state and one lock."""
    silent = _SilentSSHPort("127.0.2.21")  # accepts TCP, never speaks SSH: the refresh waits on it
    try:
        laptop, ci = tmp_path / "laptop", tmp_path / "ci"
        for folder in (laptop, ci):
            make_image(folder / "image", "v1.25.3")
            write_clusterfile(
                folder / "Clusterfile",
                cluster_doc(
                    ["127.0.2.21"],
                    name=name,
                    ssh={"user": "root", "pk": "/root/.ssh/id", "port": silent.port},
                ),
            )
        assert sealer("import", cwd=laptop).returncode == 0
        holder = subprocess.Popen(
            [sys.executable, "-m", "sealer_cli.main", "plan", "--ssh-timeout", "120s"],
            cwd=laptop,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            silent.connected.wait(60)  # the holder is refreshing, with the lock held
            assert silent.connected.is_set()
            blocked = sealer("show", cwd=ci)
            assert blocked.returncode == 1
            assert "locked by another sealer run" in blocked.stderr
            assert f"PID={holder.pid}" in blocked.stderr and "Operation=plan" in blocked.stderr
            assert "Who=" in blocked.stderr and "Created=" in blocked.stderr
            assert len(blocked.stderr.strip().splitlines()) == 1
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        # The server ends the dead client's session, and its lock with it: no stale lock.
        freed = sealer("show", "--lock-timeout", "10s", cwd=ci)
        assert freed.returncode == 0, freed.stderr
        assert "127.0.2.21" in freed.stdout
    finally:
        silent.close()


def test_a_killed_holder_row_is_not_reported_as_the_holder(pg_backend, name):
    held = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, pg_backend, name],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert held.stdout.readline().strip() == "locked"
    held.kill()
    held.wait()
    second = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, pg_backend, name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert second.stdout.readline().strip() == "locked"
        with pytest.raises(LockError) as info, PostgresBackend(pg_backend, name).lock("plan"):
            pass
        assert f"PID={second.pid}" in str(info.value) and f"PID={held.pid}" not in str(info.value)
    finally:
        second.kill()
        second.wait()


HOLD_LOCK = """
import sys, time
from state.postgres import PostgresBackend
with PostgresBackend(sys.argv[1], sys.argv[2]).lock("apply"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_push_refuses_an_older_serial_and_another_lineage(tmp_path, clusterfile, pg_backend):
    local = tmp_path / "local.json"
    assert sealer("import", "-f", str(clusterfile), "--state", str(local)).returncode == 0
    pushed = sealer("state", "push", str(local))
    assert pushed.returncode == 0, pushed.stderr
    assert "serial 1, 3 host(s)" in pushed.stdout

    # The shared state moves on (serial 2); the local copy is now older.
    _move_on(tmp_path, clusterfile)
    older = sealer("state", "push", str(local))
    assert older.returncode == 1
    assert "its serial 1 is older than the state" in older.stderr and "serial 2" in older.stderr

    # A state of the same cluster made elsewhere: another lineage.
    other = tmp_path / "other.json"
    sealer("import", "-f", str(clusterfile), "--state", str(other))
    doc = json.loads(other.read_text())
    doc["serial"] = 5
    other.write_text(json.dumps(doc))
    unrelated = sealer("state", "push", str(other))
    assert unrelated.returncode == 1 and "an unrelated state" in unrelated.stderr

    pulled = sealer("state", "pull", "-f", str(clusterfile))
    assert pulled.returncode == 0 and json.loads(pulled.stdout)["serial"] == 2

    # --force overwrites, and bumps past the stored serial so saved plans go stale.
    forced = sealer("state", "push", str(local), "--force")
    assert forced.returncode == 0 and "serial 3" in forced.stdout
    assert json.loads(sealer("show", "--json", "-f", str(clusterfile)).stdout)["serial"] == 3


def test_pull_to_a_file_and_push_back_round_trip(tmp_path, clusterfile, pg_backend):
    assert sealer("import", "-f", str(clusterfile)).returncode == 0
    pulled = sealer("state", "pull", "-f", str(clusterfile))
    path = tmp_path / "pulled.json"
    path.write_text(pulled.stdout)
    local = tmp_path / "moved.json"
    to_local = sealer("state", "push", str(path), "--state", str(local))
    assert to_local.returncode == 0, to_local.stderr
    assert json.loads(local.read_text()) == json.loads(pulled.stdout)
    same = sealer("state", "push", str(path))
    assert same.returncode == 0 and "already holds this state" in same.stdout
    plan = sealer("plan", "-f", str(clusterfile), "--refresh=false", "--state", str(local))
    assert plan.returncode == 0 and "No changes." in plan.stdout


def test_saved_plan_is_stale_after_another_run_changed_the_shared_state(
    tmp_path, clusterfile, pg_backend, name
):
    assert sealer("import", "-f", str(clusterfile)).returncode == 0
    write_clusterfile(clusterfile, cluster_doc(M, [*W, "127.0.2.13"], name=name))
    out = tmp_path / "plan.json"
    planned = sealer("plan", "-f", str(clusterfile), "--refresh=false", "--out", str(out))
    assert planned.returncode == 0, planned.stderr
    _move_on(tmp_path, clusterfile)
    stale = sealer("apply", str(out))
    assert stale.returncode == 1 and "Saved plan is stale" in stale.stderr


def test_pull_of_an_earlier_version_then_forced_push_recovers_it(tmp_path, clusterfile, pg_backend):
    assert sealer("import", "-f", str(clusterfile)).returncode == 0
    _move_on(tmp_path, clusterfile)
    listed = sealer("state", "versions", "-f", str(clusterfile))
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["2", "1"]
    first = sealer("state", "pull", "-f", str(clusterfile), "--serial", "1")
    assert json.loads(first.stdout)["serial"] == 1
    recovered = tmp_path / "serial-1.json"
    recovered.write_text(first.stdout)
    assert sealer("state", "push", str(recovered)).returncode == 1  # older: refused
    forced = sealer("state", "push", str(recovered), "--force")
    assert forced.returncode == 0 and "serial 3" in forced.stdout
    now = json.loads(sealer("show", "--json", "-f", str(clusterfile)).stdout)
    assert "team" not in now["hosts"]["127.0.2.11"]["labels"] and now["serial"] == 3


def _move_on(tmp_path, clusterfile) -> None:
    """Another machine's run changes the shared state: pull, change a label, push serial + 1."""
    doc = json.loads(sealer("state", "pull", "-f", str(clusterfile)).stdout)
    doc["hosts"]["127.0.2.11"]["labels"]["team"] = "payments"
    doc["serial"] += 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc))
    result = sealer("state", "push", str(newer))
    assert result.returncode == 0, result.stderr


class _SilentSSHPort:
    """A TCP port that accepts connections and never answers."""

    def __init__(self, address: str):
        self._socket = socket.socket()
        self._socket.bind((address, 0))
        self._socket.listen(16)
        self.port = self._socket.getsockname()[1]
        self.connected = threading.Event()
        self._accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self._accepted.append(conn)
            self.connected.set()

    def close(self):
        self._socket.close()
        for conn in self._accepted:
            conn.close()


def test_journal_of_a_first_apply_killed_before_its_first_write_is_kept(pg_backend, name):
    backend = PostgresBackend(pg_backend, name)
    doc = backend.read(name)
    backend.append(doc, set_host("10.0.0.1", {"roles": ["master"]}))
    backend.close()  # killed here: only the journal holds the finished action
    again = PostgresBackend(pg_backend, name).read(name)
    assert again["serial"] == 0 and again["lineage"] == doc["lineage"]
    assert "10.0.0.1" in again["hosts"]


# ---- a lost connection (issue 33: the team's PostgreSQL restarts in the middle of an apply) ----


def _end_session(postgres, backend: PostgresBackend) -> None:
    """The server ends the backend's session, as a restart or a failover does."""
    pid = backend._execute("SELECT pg_backend_pid()")[0][0]
    assert postgres.psql(f"SELECT pg_terminate_backend({pid}, 10000)").strip() == "t"


def test_a_restarted_server_is_waited_for_and_the_lock_taken_again(monkeypatch):
    server = PostgresServer().start()
    try:
        monkeypatch.setenv("PGPASSWORD", server.password)
        backend = PostgresBackend(server.url, "restarted")
        with backend.lock("apply"):
            first = backend.read("restarted")
            doc = _changed(first, "10.0.0.1")
            backend.write(doc, first)
            server.restart()  # every session ends, the advisory lock with it
            backend.append(doc, set_host("10.0.0.2", {"roles": ["node"], "status": "joined"}))
            other = PostgresBackend(server.url, "restarted")
            with pytest.raises(LockError), other.lock("plan"):
                pass  # this run holds the lock again, on its new session
            assert backend.write(copy.deepcopy(doc), backend.read("restarted"))
        with other.lock("show"):
            assert set(other.read("restarted")["hosts"]) == {"10.0.0.1", "10.0.0.2"}
    finally:
        server.stop()


def test_a_server_not_back_in_time_is_one_line(monkeypatch):
    server = PostgresServer().start()
    try:
        monkeypatch.setenv("PGPASSWORD", server.password)
        monkeypatch.setattr("state.postgres.RECONNECT_FOR", 1.0)
        backend = PostgresBackend(server.url, "gone")
        with pytest.raises(StateError) as info, backend.lock("apply"):
            doc = backend.read("gone")
            server.stop()
            backend.append(doc, update_host("10.0.0.1", status="joined"))
        message = str(info.value)
        assert "the connection was lost" in message and "not back within 1 s" in message
        assert "\n" not in message and server.password not in message
    finally:
        server.stop()


def test_the_lock_taken_by_another_run_while_disconnected_stops_this_one(
    postgres, pg_backend, name
):
    backend = PostgresBackend(pg_backend, name)
    other = PostgresBackend(pg_backend, name)
    with backend.lock("apply"):
        doc = backend.read(name)
        _end_session(postgres, backend)
        lost = "the lock was lost while the connection was down"
        # The other run was waiting, and got there first.
        with other.lock("apply"), pytest.raises(LockError, match=lost):
            backend.append(doc, update_host("10.0.0.1", status="joined"))
    with other.lock("show"):
        assert other.read(name)["hosts"] == {}


def test_the_state_changed_by_another_run_while_disconnected_stops_this_one(
    postgres, pg_backend, name
):
    backend = PostgresBackend(pg_backend, name)
    with backend.lock("apply"):
        doc = backend.read(name)
        _end_session(postgres, backend)
        other = PostgresBackend(pg_backend, name)
        with other.lock("apply"):  # took the lock, wrote, and let it go, all in the gap
            theirs = other.read(name)
            other.write(_changed(theirs, "10.0.0.9"), theirs)
        with pytest.raises(StateError, match="another sealer run changed the state"):
            backend.append(doc, update_host("10.0.0.1", status="joined"))
    with other.lock("show"):
        assert set(other.read(name)["hosts"]) == {"10.0.0.9"}
