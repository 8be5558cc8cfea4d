"""The local state: atomic writes, serial and lineage, backups, the lock, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from state.document import new_document, set_host
from state.local import LocalBackend, LockError, StateError
from tests.helpers import ROOT


def test_serial_increments_only_when_content_changes(tmp_path):
    backend = LocalBackend(tmp_path / "s.json")
    doc = backend.read("c")
    assert doc["serial"] == 0 and not (tmp_path / "s.json").exists()
    before = json.loads(json.dumps(doc))
    doc["hosts"]["10.0.0.1"] = {"roles": ["master"]}
    assert backend.write(doc, before) is True
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["serial"] == 1 and on_disk["lineage"] == doc["lineage"]
    again = LocalBackend(tmp_path / "s.json")
    current = again.read("c")
    assert again.write(json.loads(json.dumps(current)), current) is False
    assert json.loads((tmp_path / "s.json").read_text())["serial"] == 1


def test_first_change_keeps_the_state_as_read_as_a_backup(tmp_path):
    path = tmp_path / "s.json"
    first = LocalBackend(path)
    doc = first.read("c")
    first.write({**doc, "bootstrap_master": "10.0.0.1"}, doc)
    original = path.read_bytes()
    second = LocalBackend(path)
    doc = second.read("c")
    second.write({**doc, "bootstrap_master": "10.0.0.2"}, doc)
    assert (tmp_path / "s.json.backup").read_bytes() == original
    doc = second.read("c")
    second.write({**doc, "bootstrap_master": "10.0.0.3"}, doc)
    assert (tmp_path / "s.json.backup").read_bytes() == original  # as read at the start


def test_state_of_another_cluster_or_broken_json_is_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{broken")
    with pytest.raises(StateError, match="the state is not valid JSON"):
        LocalBackend(path).read("c")
    path.write_text(json.dumps(new_document("other")))
    with pytest.raises(StateError, match="belongs to cluster 'other', not 'c'"):
        LocalBackend(path).read("c")


def test_unwritable_folder_leaves_the_old_state(tmp_path):
    if os.geteuid() == 0:
        # root ignores permission bits: make the folder unusable by putting a file in its way
        backend = LocalBackend(tmp_path / "file-not-folder" / "s.json")
        (tmp_path / "file-not-folder").write_text("x")
    else:  # pragma: no cover
        (tmp_path / "ro").mkdir(mode=0o500)
        backend = LocalBackend(tmp_path / "ro" / "s.json")
    doc = new_document("c")
    with pytest.raises(StateError, match="cannot"):
        backend.write({**doc, "bootstrap_master": "x"}, doc)


HOLD_LOCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from state.local import LocalBackend
with LocalBackend(sys.argv[2]).lock("apply"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _hold_lock(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(ROOT), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process_fails_at_once_with_holder_info(tmp_path):
    path = tmp_path / "s.json"
    holder = _hold_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(LockError) as info, LocalBackend(path).lock("plan"):
            pass
        assert time.monotonic() - started < 5
        message = str(info.value)
        assert "locked by another sealer run" in message
        assert "Operation=apply" in message and f"PID={holder.pid}" in message
        assert "ID=" in message and "Who=" in message and "Created=" in message
    finally:
        holder.kill()
        holder.wait()


def test_killed_holder_frees_the_lock_and_a_waiter_gets_it(tmp_path):
    path = tmp_path / "s.json"
    holder = _hold_lock(path)
    subprocess.Popen(["sh", "-c", f"sleep 1; kill -9 {holder.pid}"])
    with LocalBackend(path).lock("apply", timeout=30) as info:
        assert info["PID"] == os.getpid()
    holder.wait()
    assert holder.returncode == -signal.SIGKILL


WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from state.local import LocalBackend
backend = LocalBackend(sys.argv[2])
doc = backend.read("c")
n = 0
while True:
    n += 1
    new = dict(doc, hosts={f"10.0.{i // 250}.{i % 250}": {"roles": ["node"], "n": n}
                           for i in range(2000)})
    backend.write(new, doc)
    doc = new
    if n == 3:
        print("writing", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_a_killed_writer_leaves_a_whole_state(tmp_path, delay):
    path = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(ROOT), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    doc = json.loads(path.read_text())  # parses: the old or the new document, never half
    assert doc["serial"] >= 3 and len(doc["hosts"]) == 2000
    assert len({h["n"] for h in doc["hosts"].values()}) == 1
    backend = LocalBackend(path)
    with backend.lock("apply"):  # the next run cleans what the killed writer left behind
        assert not list(tmp_path.glob(".s.json.*.tmp"))
        assert backend.read("c")["serial"] == doc["serial"]


def test_a_full_disk_leaves_the_old_state(tmp_path):
    if os.geteuid() != 0:  # pragma: no cover - CI and the sandbox run as root
        pytest.fail("this test mounts a tiny tmpfs and needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        backend = LocalBackend(folder / "s.json")
        doc = backend.read("c")
        backend.write({**doc, "bootstrap_master": "10.0.0.1"}, doc)
        before = (folder / "s.json").read_bytes()
        big = LocalBackend(folder / "s.json")
        doc = big.read("c")
        huge = {
            **doc,
            "hosts": {f"h{i}": {"roles": ["node"], "pad": "x" * 100} for i in range(2000)},
        }
        with pytest.raises(StateError, match="the disk is full; the old state is unchanged"):
            big.write(huge, doc)
        assert (folder / "s.json").read_bytes() == before
        assert not list(folder.glob(".s.json.*.tmp"))
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_journal_of_a_first_apply_killed_before_its_first_write_is_kept(tmp_path):
    path = tmp_path / "s.json"
    doc = LocalBackend(path).read("c")  # nothing stored yet: serial 0
    LocalBackend(path).append(doc, set_host("10.0.0.1", {"roles": ["master"]}))
    assert not path.exists()  # killed here: only the journal holds the finished action
    again = LocalBackend(path).read("c")
    assert again["lineage"] == doc["lineage"] and "10.0.0.1" in again["hosts"]
