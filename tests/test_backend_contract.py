"""One contract, every backend: the local file, PostgreSQL (a real server) and memory."""

from __future__ import annotations

import copy

import pytest

from cluster.records import HostRecord, set_host, update_host
from state.backend import Backend
from state.common import LockError
from state.local import LocalBackend
from state.memory import MemoryBackend

CLUSTER = "contract"


@pytest.fixture(params=["local", "postgres", "memory"])
def handles(request, tmp_path):
    """A function giving a new handle on one and the same stored state (as a second run gets)."""
    if request.param == "local":
        return lambda: LocalBackend(tmp_path / "state.json")
    if request.param == "memory":
        shared = MemoryBackend()
        return lambda: shared
    url = request.getfixturevalue("pg_backend")
    from state.postgres import PostgresBackend

    name = f"{CLUSTER}-{request.node.name[-20:]}".replace("[", "-").replace("]", "")
    return lambda: PostgresBackend(url, name)


def _cluster(backend) -> str:
    return getattr(backend, "cluster", CLUSTER)


def _with_host(doc: dict, ip: str) -> dict:
    changed = copy.deepcopy(doc)
    changed["hosts"][ip] = HostRecord(("node",), version="v1.25.3", status="ready").to_json()
    return changed


def test_is_a_backend(handles):
    assert isinstance(handles(), Backend)
    assert handles().describe()


def test_nothing_stored_reads_as_serial_zero_with_a_lineage(handles):
    backend = handles()
    with backend.lock("plan"):
        doc = backend.read(_cluster(backend))
    assert doc["serial"] == 0 and doc["hosts"] == {} and doc["lineage"]
    assert backend.versions() == []


def test_write_bumps_the_serial_only_when_content_changes(handles):
    backend = handles()
    with backend.lock("apply"):
        first = backend.read(_cluster(backend))
        doc = _with_host(first, "10.0.0.1")
        assert backend.write(doc, first) is True and doc["serial"] == 1
    again = handles()
    with again.lock("plan"):
        read = again.read(_cluster(again))
        assert read["serial"] == 1 and "10.0.0.1" in read["hosts"]
        assert again.write(copy.deepcopy(read), read) is False


def test_appended_patches_survive_and_a_write_folds_them_in(handles):
    backend = handles()
    with backend.lock("apply"):
        first = backend.read(_cluster(backend))
        doc = _with_host(first, "10.0.0.1")
        backend.write(doc, first)
        backend.append(doc, update_host("10.0.0.1", status="upgraded"))
        backend.append(doc, set_host("10.0.0.2", HostRecord(("node",))))
    # the run stopped here (no final write): the next one sees the finished actions
    later = handles()
    with later.lock("apply"):
        seen = later.read(_cluster(later))
        assert seen["serial"] == 1 and seen["hosts"]["10.0.0.1"]["status"] == "upgraded"
        assert "10.0.0.2" in seen["hosts"]
        assert later.write(copy.deepcopy(seen), seen) is True  # folds the journal in
    last = handles()
    with last.lock("show"):
        assert last.read(_cluster(last))["serial"] == 2


def test_the_version_a_run_replaced_is_kept(handles):
    first_run = handles()
    with first_run.lock("apply"):
        first = first_run.read(_cluster(first_run))
        one = _with_host(first, "10.0.0.1")
        first_run.write(one, first)
    second_run = handles()  # the local file keeps the state as the last run found it
    with second_run.lock("apply"):
        read = second_run.read(_cluster(second_run))
        second_run.write(_with_host(read, "10.0.0.2"), read)
        versions = second_run.versions()
        assert versions and versions[0][0] == 1 and versions[0][1] == first["lineage"]
        kept = second_run.read_version(1)
        assert kept["serial"] == 1 and set(kept["hosts"]) == {"10.0.0.1"}
        assert second_run.read_version(99) is None


def test_one_holder_of_the_lock_at_a_time(handles):
    holder, other = handles(), handles()
    with (
        holder.lock("apply"),
        pytest.raises(LockError, match="Operation=apply"),
        other.lock("plan", timeout=0.2),
    ):
        pass
    with handles().lock("plan"):  # released when the holder is done
        pass
