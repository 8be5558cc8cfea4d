"""planner/drift: what a refresh's facts mean for the state. Pure: built in memory."""

from __future__ import annotations

from cluster.model import Action, ClusterView, HostFacts, Plan
from cluster.records import HostRecord, State
from planner.drift import accept_drift, blocking_unread, find_drift, unread_hosts

M, W = "10.0.0.1", "10.0.1.1"


def state(runtime="kubernetes") -> State:
    record = dict(version="v1.25.3", status="ready", host_key="SHA256:m")
    return State(
        cluster="c",
        lineage="l",
        serial=3,
        image={"name": "i", "digest": "d", "version": "v1.25.3", "runtime": runtime},
        bootstrap_master=M,
        hosts={
            M: HostRecord(("master",), hostname="m1", **record),
            W: HostRecord(("node",), labels={"pool": "a"}, hostname="w1", **record),
        },
    )


def node(address, version="v1.25.3", labels=None, taints=(), ready=True):
    return {
        "address": address,
        "ready": ready,
        "version": version,
        "labels": labels or {},
        "taints": sorted(taints),
    }


def facts(**overrides):
    base = {
        M: HostFacts(M, True, host_key="SHA256:m", hostname="m1", version="v1.25.3"),
        W: HostFacts(W, True, host_key="SHA256:m", hostname="w1", version="v1.25.3"),
    }
    base.update(overrides)
    return base


def view(**nodes):
    default = {"m1": node(M), "w1": node(W, labels={"pool": "a"})}
    default.update(nodes)
    return ClusterView(
        source=M, nodes={k: v for k, v in default.items() if v}, etcd=frozenset({"m1"})
    )


def kinds(findings):
    return sorted((f.kind, f.host) for f in findings)


def test_a_matching_cluster_has_no_drift():
    assert find_drift(state(), facts(), view()) == []


def test_each_kind_of_drift_is_named_with_its_host():
    found = find_drift(
        state(),
        facts(**{W: HostFacts(W, True, host_key="SHA256:other", hostname="w1", version="v1.25.3")}),
        view(w1=node(W, labels={"pool": "b"}, taints=["x=y:NoSchedule"]), stray=node("10.9.9.9")),
    )
    assert kinds(found) == [
        ("host_key_changed", W),
        ("labels_changed", W),
        ("taints_changed", W),
        ("unexpected_node", "stray"),
    ]


def test_unreachable_host_and_missing_node_and_etcd_member():
    found = find_drift(
        state(),
        facts(**{M: HostFacts(M, False, error="refused")}),
        ClusterView(source=W, nodes={"m1": node(M)}, etcd=frozenset({"ghost"})),
    )
    assert kinds(found) == [
        ("etcd_member_missing", M),
        ("etcd_member_unexpected", "ghost"),
        ("host_unreachable", M),
        ("node_missing", W),
    ]


def test_k0s_controllers_are_not_nodes():
    found = find_drift(
        state("k0s"), facts(), ClusterView(source=M, nodes={"w1": node(W, labels={"pool": "a"})})
    )
    assert found == []


def test_accepting_drift_joins_missing_nodes_again_and_records_what_was_found():
    recorded = state()
    found = find_drift(
        recorded,
        facts(**{W: HostFacts(W, True, host_key="SHA256:m", hostname="w1", version="v1.26.0")}),
        view(m1=None, w1=node(W, version="v1.26.0", labels={"pool": "b"})),
    )
    accepted = accept_drift(recorded, found)
    assert accepted.hosts[W].version == "v1.26.0" and accepted.hosts[W].labels == {"pool": "b"}
    assert M in accepted.hosts  # the bootstrap master is never dropped, even when missing
    assert recorded.hosts[W].version == "v1.25.3"  # the recorded state is not touched


def test_a_missing_worker_leaves_the_accepted_state():
    found = find_drift(state(), facts(), view(w1=None))
    assert kinds(found) == [("node_missing", W)]
    assert set(accept_drift(state(), found).hosts) == {M}


def test_an_endpoint_that_points_away_from_the_masters_is_drift():
    right = {
        M: HostFacts(M, True, host_key="SHA256:m", hostname="m1", version="v1.25.3", endpoint=M),
        W: HostFacts(W, True, host_key="SHA256:m", hostname="w1", version="v1.25.3", endpoint=M),
    }
    assert find_drift(state(), right, view()) == []
    gone = "10.0.0.99"  # a master that left, or any host that is not a master
    wrong = facts(
        **{
            M: HostFacts(
                M, True, host_key="SHA256:m", hostname="m1", version="v1.25.3", endpoint=W
            ),
            W: HostFacts(
                W, True, host_key="SHA256:m", hostname="w1", version="v1.25.3", endpoint=gone
            ),
        }
    )
    findings = find_drift(state(), wrong, view())
    assert kinds(findings) == [("endpoint_stale", M), ("endpoint_stale", W)]
    by_host = {f.host: f for f in findings}
    assert by_host[M].expected == M and by_host[M].actual == W
    assert by_host[W].actual == gone and M in by_host[W].expected
    missing = facts(**{W: HostFacts(W, True, host_key="SHA256:m", hostname="w1", endpoint="")})
    assert ("endpoint_stale", W) in kinds(find_drift(state(), missing, view()))


def test_a_certificate_close_to_its_end_is_drift():
    now = 1_800_000_000.0
    soon, later = now + 10 * 86400, now + 90 * 86400
    fine = facts(**{M: HostFacts(M, True, host_key="SHA256:m", hostname="m1", cert_expires=later)})
    assert find_drift(state(), fine, view(), now=now) == []
    ending = facts(**{M: HostFacts(M, True, host_key="SHA256:m", hostname="m1", cert_expires=soon)})
    (finding,) = find_drift(state(), ending, view(), now=now)
    assert (finding.kind, finding.host, finding.actual) == (
        "cert_expiring",
        M,
        "2027-01-25T08:00:00Z",
    )


def _worker_key_changed_and(master: HostFacts) -> dict:
    """Facts where neither host could be read: the worker shows another key."""
    return facts(
        **{M: master, W: HostFacts(W, False, host_key="SHA256:new", reason="host_key_changed")}
    )


def test_each_reason_a_host_could_not_be_read_is_its_own_finding():
    master = HostFacts(M, False, error="SSH authentication failed", reason="auth_failed")
    found = find_drift(state(), _worker_key_changed_and(master), view())
    assert kinds(found) == [("auth_failed", M), ("host_key_changed", W)]
    changed = next(f for f in found if f.kind == "host_key_changed")
    assert (changed.expected, changed.actual) == ("SHA256:m", "SHA256:new")


def test_unread_hosts_say_why_and_a_changed_key_both_fingerprints():
    master = HostFacts(M, False, error="connection refused", reason="down")
    unread = unread_hosts(state(), _worker_key_changed_and(master))
    assert unread[M] == "down (connection refused)"
    assert unread[W] == (
        "host key changed (the state pinned SHA256:m, the host now shows SHA256:new; if it was "
        f"reinstalled on purpose: sealer state forget-host-key {W})"
    )
    assert unread_hosts(state(), facts()) == {}


def _plan(actions, targets=()):
    return Plan(
        cluster="c",
        lineage="l",
        serial=3,
        actions=tuple(actions),
        image={},
        previous_image=None,
        bootstrap_master=M,
        destroy=False,
        targets=tuple(targets),
    )


def test_an_unread_host_blocks_unless_it_leaves_or_a_target_plan_does_not_need_it():
    unread = {W: "down (refused)"}
    empty = _plan([])
    assert blocking_unread(frozenset({M, W}), empty, unread) == unread  # no "matches" claim
    assert blocking_unread(frozenset({M}), empty, unread) == {}  # leaving: its removal goes on
    other = "10.0.1.2"
    join = Action(f"join_worker.{other}", "join_worker", other)
    targeted = _plan([join], targets=[other])
    assert blocking_unread(frozenset({M, W, other}), targeted, unread) == {}
    on_master = {M: "authentication failed"}  # every join uses the bootstrap master's API
    assert blocking_unread(frozenset({M, W, other}), targeted, on_master) == on_master
    assert blocking_unread(frozenset({M, W}), _plan([], targets=[W]), on_master) == {}


def test_a_container_that_cannot_get_its_image_is_a_finding_on_its_nodes_host():
    failure = {
        "pod": "default/web-1",
        "node": "w1",
        "container": "web",
        "image": "docker.io/library/web:1",
        "reason": "ErrImagePull",
        "message": 'failed to pull and unpack image "docker.io/library/web:1": not found',
    }
    stranger = {**failure, "pod": "default/web-2", "node": "elsewhere"}
    live = ClusterView(
        source=M,
        nodes={"m1": node(M), "w1": node(W, labels={"pool": "a"})},
        etcd=frozenset({"m1"}),
        pull_failures=(failure, stranger),
    )
    found = find_drift(state(), facts(), live)
    assert kinds(found) == [("image_pull_failed", W), ("image_pull_failed", "elsewhere")]
    assert found[0].actual == {k: v for k, v in failure.items() if k != "node"}
    assert accept_drift(state(), found) == state()  # nothing for a plan to change
