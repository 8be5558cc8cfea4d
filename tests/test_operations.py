"""Each operation on its own: an in-memory state backend and a recorded-command double of the
hosts (tests/fakes.py). No SSH here: tests/e2e runs the same operations on real hosts."""

from __future__ import annotations

import json

import pytest

from cluster.errors import SealerError, UnreadHosts
from operations import apply as applying
from operations import drift, import_cluster, kubeconfig, plan, state_sync
from operations.common import SSHSettings, StateRef
from operations.events import Listener
from state.memory import MemoryBackend
from tests.fakes import FakeCluster
from tests.helpers import cluster_doc, make_image, write_clusterfile

MASTER, W1, W2 = "127.0.1.1", "127.0.1.2", "127.0.1.3"


class Recorder(Listener):
    def __init__(self, answer: bool = False):
        self.answer = answer
        self.events: list[tuple[str, str]] = []
        self.questions: list[str] = []

    def started(self, action):
        self.events.append(("started", action.id))

    def finished(self, action):
        self.events.append(("finished", action.id))

    def failed(self, action, error):
        self.events.append(("failed", action.id))

    def skipped(self, action, because):
        self.events.append(("skipped", action.id))

    def approve(self, question):
        self.questions.append(question)
        return self.answer


@pytest.fixture
def setup(tmp_path):
    """A k3s image, a Clusterfile writer, a memory backend and a fake cluster."""
    image = make_image(tmp_path / "image", runtime="k3s")
    fake = FakeCluster({MASTER: "m1", W1: "w1", W2: "w2"})
    backend = MemoryBackend()

    class Setup:
        def clusterfile(self, masters=(MASTER,), workers=(W1, W2), name="c"):
            doc = cluster_doc(masters, workers, image=str(image), name=name)
            return str(write_clusterfile(tmp_path / f"Clusterfile-{len(workers)}", doc))

        ref = StateRef(backend=backend)
        ssh = SSHSettings(connect=fake.connect)

        def imported(self):
            request = import_cluster.ImportRequest(self.clusterfile(), self.ref)
            import_cluster.import_cluster(request, Listener())

        def apply_request(self, clusterfile, **fields):
            fields.setdefault("auto_approve", True)
            fields.setdefault("refresh", False)
            return applying.ApplyRequest(
                clusterfile=clusterfile, state=self.ref, ssh=self.ssh, **fields
            )

    s = Setup()
    s.fake, s.backend, s.tmp = fake, backend, tmp_path
    return s


def test_plan_of_a_new_cluster_and_a_saved_plan_that_goes_stale(setup):
    out = setup.tmp / "plan.json"
    request = plan.PlanRequest(setup.clusterfile(), setup.ref, setup.ssh, out=str(out))
    result = plan.plan(request, Listener())
    assert [a.id for a in result.plan.actions] == [
        f"init_cluster.{MASTER}",
        f"join_worker.{W1}",
        f"join_worker.{W2}",
    ]
    assert result.has_changes
    # nothing stored: the hosts are only asked the host checks (sealer check), read-only
    assert {ip for ip, _ in setup.fake.commands} == {MASTER, W1, W2}
    assert all("pc_swap_kb" in command for _, command in setup.fake.commands)
    setup.imported()  # another run changes the state
    stale = applying.ApplyRequest(plan_file=str(out), state=setup.ref, ssh=setup.ssh)
    with pytest.raises(SealerError, match="Saved plan is stale"):
        applying.apply(stale, Recorder())


def test_import_records_every_host_and_refuses_a_second_import(setup):
    setup.imported()
    stored = setup.backend.stored
    assert stored["serial"] == 1 and set(stored["hosts"]) == {MASTER, W1, W2}
    assert {h["status"] for h in stored["hosts"].values()} == {"imported"}
    assert stored["bootstrap_master"] == MASTER and stored["image"]["runtime"] == "k3s"
    with pytest.raises(SealerError, match="already exists"):
        setup.imported()
    assert setup.fake.commands == []  # import touches no host


def test_apply_removes_a_worker_and_folds_its_journal_into_the_state(setup):
    setup.imported()
    listener = Recorder()
    result = applying.apply(setup.apply_request(setup.clusterfile(workers=(W1,))), listener)
    assert result.ok and result.done == {"add": 0, "change": 0, "destroy": 1}
    assert set(setup.backend.stored["hosts"]) == {MASTER, W1}
    assert setup.backend.stored["serial"] == 2 and setup.backend.journal == []
    assert listener.events == [
        ("started", f"delete_worker.{W2}"),
        ("finished", f"delete_worker.{W2}"),
    ]
    drains = [c for c in setup.fake.ran(MASTER) if " drain " in f" {c} "]
    assert drains and "w2" in drains[0]  # drained from the bootstrap master, by node name


def test_a_failed_action_records_nothing_and_the_others_finish(setup):
    setup.imported()
    setup.fake.failing[W1] = "rm -rf"  # cleaning W1 fails
    listener = Recorder()
    result = applying.apply(setup.apply_request(setup.clusterfile(workers=())), listener)
    assert not result.ok and list(result.outcome.failed) == [f"delete_worker.{W1}"]
    assert result.outcome.done == [f"delete_worker.{W2}"]
    assert set(setup.backend.stored["hosts"]) == {MASTER, W1}  # W1 is proposed again next time
    assert result.done == {"add": 0, "change": 0, "destroy": 1}


def test_apply_asks_and_a_no_changes_nothing(setup):
    setup.imported()
    listener = Recorder(answer=False)
    request = setup.apply_request(setup.clusterfile(workers=(W1,)), auto_approve=False)
    with pytest.raises(SealerError, match="apply cancelled"):
        applying.apply(request, listener)
    assert listener.questions == ["apply"] and setup.fake.commands == []
    assert setup.backend.stored["serial"] == 1


def test_refresh_only_apply_accepts_the_drift_into_the_state(setup):
    setup.imported()
    setup.fake.labels["w1"] = {"team": "blue"}  # changed outside of sealer
    request = setup.apply_request(setup.clusterfile(), refresh=True, refresh_only=True)
    result = applying.apply(request, Recorder())
    assert result.plan is None and result.accepted >= 1
    assert setup.backend.stored["hosts"][W1]["labels"] == {"team": "blue"}
    assert not any("label" in c for c in setup.fake.ran())  # only read, never changed


def test_drift_names_an_unreachable_host_and_changes_nothing(setup):
    setup.imported()
    setup.fake.down.add(W2)
    result = drift.check_drift(
        drift.DriftRequest(setup.clusterfile(), setup.ref, setup.ssh), Listener()
    )
    kinds = {(f.kind, f.host) for f in result.findings}
    assert ("host_unreachable", W2) in kinds
    assert result.state.serial == 1 and setup.backend.stored["serial"] == 1


def test_drift_failure_names_the_cluster(setup, tmp_path):
    missing = str(tmp_path / "no-such-Clusterfile")
    with pytest.raises(SealerError) as info:
        drift.check_drift(drift.DriftRequest(missing, setup.ref, setup.ssh), Listener())
    assert info.value.cluster == "unknown"


def test_kubeconfig_is_read_from_the_bootstrap_master_with_the_runtime_command(setup):
    setup.imported()
    request = kubeconfig.KubeconfigRequest(setup.clusterfile(), setup.ref, setup.ssh)
    fetched = kubeconfig.fetch_kubeconfig(request, Listener())
    assert fetched.text == setup.fake.kubeconfig and fetched.source == MASTER
    assert setup.fake.commands == [(MASTER, "cat /etc/rancher/k3s/k3s.yaml")]


def test_destroy_resets_every_host_bootstrap_master_last_and_empties_the_state(setup):
    setup.imported()
    listener = Recorder()
    result = applying.destroy(setup.apply_request(setup.clusterfile()), listener)
    assert result.ok and result.done["destroy"] == 3
    finished = [a for kind, a in listener.events if kind == "finished"]
    assert finished[-1] == f"reset_cluster.{MASTER}"
    stored = setup.backend.stored
    assert stored["hosts"] == {} and stored["image"] is None and stored["bootstrap_master"] is None


def test_state_push_follows_lineage_and_serial_rules(setup, tmp_path):
    setup.imported()
    request = state_sync.StateRequest(cluster="c", state=setup.ref)
    pulled = state_sync.pull(request, Listener())
    path = tmp_path / "pulled.json"

    def push(doc, force=False):
        path.write_text(json.dumps(doc))
        return state_sync.push(request, str(path), force, Listener())

    assert push(pulled).changed is False  # the same state: nothing to do
    with pytest.raises(SealerError, match="an unrelated state"):
        push({**pulled, "lineage": "another"})
    newer = {**pulled, "serial": 5, "bootstrap_master": W1}
    assert push(newer).state.serial == 5
    with pytest.raises(SealerError, match="is older than"):
        push({**pulled, "bootstrap_master": W2})
    forced = push({**pulled, "lineage": "another"}, force=True)
    assert forced.state.serial == 6  # bumped past the newer state: plans made on it go stale
    listed = state_sync.versions(request, Listener())
    assert listed.current.serial == 6 and [v[0] for v in listed.earlier] == [5, 1]
    assert state_sync.pull(request, Listener(), serial=1)["lineage"] == pulled["lineage"]


def test_forget_host_key_clears_only_that_host(setup):
    setup.imported()
    request = state_sync.StateRequest(setup.clusterfile(), state=setup.ref)
    backend = setup.backend
    backend.stored["hosts"][W1]["host_key"] = "SHA256:old"
    assert state_sync.forget_host_key(request, W1, Listener()) == "SHA256:old"
    assert backend.stored["hosts"][W1]["host_key"] == "" and backend.stored["serial"] == 2
    with pytest.raises(SealerError, match="is not a host"):
        state_sync.forget_host_key(request, "127.0.1.99", Listener())


def test_a_plan_never_claims_a_match_about_a_host_it_could_not_read(setup):
    setup.imported()
    setup.fake.down.add(W2)
    request = plan.PlanRequest(setup.clusterfile(), setup.ref, setup.ssh)
    with pytest.raises(UnreadHosts) as info:
        plan.plan(request, Listener())
    assert list(info.value.hosts) == [W2] and info.value.hosts[W2].startswith("down")
    assert "--refresh=false" in str(info.value) and "--target" in str(info.value)
    without_refresh = plan.PlanRequest(setup.clusterfile(), setup.ref, setup.ssh, refresh=False)
    assert plan.plan(without_refresh, Listener()).plan.empty


def test_apply_refuses_before_touching_a_host_while_one_it_keeps_is_unread(setup):
    setup.imported()
    setup.fake.down.add(W2)
    before = len(setup.fake.commands)
    request = setup.apply_request(setup.clusterfile(workers=(W2,)), refresh=True)  # W1 leaves
    with pytest.raises(UnreadHosts):
        applying.apply(request, Recorder())
    changing = [c for _, c in setup.fake.commands[before:] if "drain" in c or "rm -rf" in c]
    assert changing == [] and setup.backend.stored["serial"] == 1


def test_a_dead_worker_leaving_the_clusterfile_is_still_removed(setup):
    setup.imported()
    setup.fake.down.add(W2)
    request = setup.apply_request(setup.clusterfile(workers=(W1,)), refresh=True)
    result = applying.apply(request, Recorder())
    assert result.ok, result.outcome
    assert set(setup.backend.stored["hosts"]) == {MASTER, W1}


def test_a_destroy_plan_goes_ahead_with_a_dead_host(setup):
    setup.imported()
    setup.fake.down.add(W2)
    request = plan.PlanRequest(setup.clusterfile(), setup.ref, setup.ssh, destroy=True)
    made = plan.plan(request, Listener()).plan
    assert f"reset_cluster.{W2}" in {a.id for a in made.actions}


def test_destroy_forgets_a_dead_host_without_resetting_it_and_resets_the_others(setup):
    setup.imported()
    setup.fake.down.add(W2)
    result = applying.destroy(setup.apply_request(setup.clusterfile()), Recorder())
    assert result.ok and result.done["destroy"] == 3
    assert setup.backend.stored["hosts"] == {}
    assert [c for c in setup.fake.ran(W2) if c != "true"] == []  # only asked if it answers
    assert any("rm -rf" in c for c in setup.fake.ran(W1))  # the living are cleaned


def test_a_first_apply_reads_and_joins_each_host_over_one_connection(setup):
    """The host checks' read of the joining hosts and the actions share the run's connections
    (a first apply paid two SSH handshakes per host), and they are closed however the apply
    ends."""
    drivers = []

    def counting(hosts, timeouts, pinned):
        drivers.append(setup.fake.connect(hosts, timeouts, pinned))
        return drivers[-1]

    setup.ssh = SSHSettings(connect=counting)
    declined = setup.apply_request(setup.clusterfile(), refresh=True, auto_approve=False)
    with pytest.raises(SealerError):
        applying.apply(declined, Recorder(answer=False))
    assert len(drivers) == 1 and drivers[0].closed
    assert any("pc_swap_kb" in c for c in setup.fake.ran(W1))  # the checks read the host
    result = applying.apply(setup.apply_request(setup.clusterfile(), refresh=True), Recorder())
    assert result.ok and len(drivers) == 2 and drivers[1].closed
    # what the checks read (name, rootfs marker, machine), the preparations do not ask again
    assert not [c for c in setup.fake.ran() if c.startswith("hostname; uname -m")]
