"""--target and --replace: the planner cuts a plan to some hosts, and re-joins broken ones."""

from __future__ import annotations

import pytest

from cluster.errors import SealerError
from cluster.model import Plan
from tests.test_planner import M, W, applied, by_id, desired, make_plan


def test_target_one_new_worker_keeps_its_join_and_leaves_the_others_out():
    state = applied(desired(M, W))
    plan = make_plan(desired(M, [*W, "10.0.1.4", "10.0.1.5"]), state, targets=("10.0.1.4",))
    assert [a.id for a in plan.actions] == ["join_worker.10.0.1.4"]
    assert plan.left_out == ("join_worker.10.0.1.5",)
    assert plan.targets == ("10.0.1.4",)


def test_target_worker_upgrade_keeps_the_control_plane_but_not_other_batches():
    state = applied(desired(M, W), version="v1.25.3")
    plan = make_plan(desired(M, W, version="v1.26.1"), state, targets=(W[2],), max_unavailable="1")
    a = by_id(plan)
    assert set(a) == {
        "upgrade_master.10.0.0.1",
        "upgrade_master.10.0.0.2",
        "upgrade_master.10.0.0.3",
        f"upgrade_worker.{W[2]}",
    }
    # the barriers between batches are gone: the worker waits for the last master only
    assert a[f"upgrade_worker.{W[2]}"].depends_on == ("upgrade_master.10.0.0.3",)
    assert f"upgrade_worker.{W[0]}" in plan.left_out


def test_target_the_leaving_bootstrap_master_keeps_the_joins_and_endpoint_moves():
    state = applied(desired(M, W))
    plan = make_plan(desired(["10.0.0.2", "10.0.0.3", "10.0.0.4"], W), state, targets=(M[0],))
    ids = {a.id for a in plan.actions}
    assert "delete_master.10.0.0.1" in ids
    assert "join_master.10.0.0.4" in ids  # a master leaves only after the joins before it
    assert {f"update_endpoint.{w}" for w in W} <= ids  # workers move before it leaves
    assert by_id(plan)["delete_master.10.0.0.1"].details["hands_bootstrap_to"] == "10.0.0.2"


def test_target_leaves_out_launch_commands_and_survives_the_json_round_trip():
    cluster = desired(M, [*W, "10.0.1.4"])
    cluster = type(cluster)(**{**cluster.__dict__, "cmd": ("kubectl apply -f x.yaml",)})
    plan = make_plan(cluster, applied(desired(M, W)), targets=("10.0.1.4",))
    assert [a.kind for a in plan.actions] == ["join_worker"]
    assert any(i.startswith("launch_apps.") for i in plan.left_out)
    again = Plan.from_json(plan.to_json())
    assert again.targets == plan.targets and again.left_out == plan.left_out


def test_target_must_name_a_host():
    with pytest.raises(SealerError, match=r"--target 10\.9\.9\.9: not a host"):
        make_plan(desired(M, W), applied(desired(M, W)), targets=("10.9.9.9",))


def test_replace_a_worker_resets_then_joins_it_again():
    cluster = desired(M, W)
    plan = make_plan(cluster, applied(cluster), replace=(W[1],))
    a = by_id(plan)
    assert set(a) == {f"delete_worker.{W[1]}", f"join_worker.{W[1]}"}
    assert f"delete_worker.{W[1]}" in a[f"join_worker.{W[1]}"].depends_on
    assert plan.replaced == (W[1],)
    assert plan.summary == {"add": 1, "change": 0, "destroy": 1}


def test_replace_the_bootstrap_master_moves_the_endpoint_then_rejoins_it():
    cluster = desired(M, W)
    plan = make_plan(cluster, applied(cluster), replace=(M[0],))
    a = by_id(plan)
    order = [x.id for x in plan.actions]
    assert plan.bootstrap_master == M[1]
    assert order.index("delete_master.10.0.0.1") < order.index("join_master.10.0.0.1")
    for w in W:
        assert order.index(f"update_endpoint.{w}") < order.index("delete_master.10.0.0.1")
    assert "delete_master.10.0.0.1" in a["join_master.10.0.0.1"].depends_on


def test_replace_refuses_the_only_master_and_unknown_hosts():
    single = desired(M[:1], W)
    with pytest.raises(SealerError, match="no other master stays"):
        make_plan(single, applied(single), replace=(M[0],))
    with pytest.raises(SealerError, match=r"--replace 10\.0\.1\.9: not a host of the Clusterfile"):
        make_plan(single, applied(single), replace=("10.0.1.9",))
    grown = desired(M[:1], [*W, "10.0.1.9"])
    with pytest.raises(SealerError, match="not joined yet"):
        make_plan(grown, applied(single), replace=("10.0.1.9",))
