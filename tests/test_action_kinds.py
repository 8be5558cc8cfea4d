"""Every action kind is whole: a spec (what it changes, whether it drains, prepares its host,
is cluster-wide, how it is explained, its details), a step that runs it, a rendering in the
plan; and its details keep the JSON shape plans store."""

from __future__ import annotations

import json

import pytest

from cluster import actions
from cluster.actions import SPECS, Kind
from cluster.model import Action
from executors.steps import STEPS
from views.text import FIELDS


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_a_spec_a_step_and_a_rendering(kind):
    spec = SPECS[kind]
    assert spec.kind is kind
    details = spec.details()
    assert spec.change(details) in ("add", "change", "destroy", None)
    assert isinstance(spec.explain(details), str)
    assert callable(STEPS[kind])
    assert isinstance(FIELDS[kind](details), list)


def test_nothing_is_registered_for_a_kind_that_does_not_exist():
    assert set(STEPS) == set(Kind) == set(SPECS) == set(FIELDS)


def test_details_read_as_the_mapping_plans_store():
    details = actions.UpgradeDetails("v1.25.3", "v1.26.1", batch=2)
    assert details == {"from": "v1.25.3", "to": "v1.26.1", "batch": 2}
    assert details.to_version == "v1.26.1" and details["to"] == "v1.26.1"
    assert actions.UpgradeDetails("v1", "v2") == {"from": "v1", "to": "v2"}  # batch 0: left out
    assert actions.LeaveDetails("v1") == {"version": "v1"}
    assert dict(actions.NodeDetails("v1", "node", {"a": "b"}, ("t:NoSchedule",))) == {
        "version": "v1", "role": "node", "labels": {"a": "b"}, "taints": ["t:NoSchedule"],
    }  # fmt: skip


def test_an_action_round_trips_through_json_with_typed_details():
    action = Action(
        "launch_app.web", Kind.LAUNCH_APP, "10.0.0.1", ("master",), (),
        actions.LaunchAppDetails("web", "apps:v1", ("kubectl apply -f web.yaml",), "sha256:x",
                                 "create"),
    )  # fmt: skip
    data = json.loads(json.dumps(action.to_json()))
    assert data["kind"] == "launch_app"
    assert data["details"]["commands"] == ["kubectl apply -f web.yaml"]
    again = Action.from_json(data)
    assert again.kind is Kind.LAUNCH_APP
    assert isinstance(again.details, actions.LaunchAppDetails)
    assert again.details.commands == ("kubectl apply -f web.yaml",)
    assert again.change == "add"
    assert again.to_json() == action.to_json()


def test_ids_are_built_and_read_in_one_place():
    identifier = actions.action_id(Kind.JOIN_WORKER, "10.0.0.7")
    assert identifier == "join_worker.10.0.0.7"
    assert actions.parse_id(identifier) == (Kind.JOIN_WORKER, "10.0.0.7")
    with pytest.raises(ValueError):
        actions.parse_id("no_such_kind.10.0.0.7")


def test_the_spec_says_what_the_old_lists_said():
    """The facts six modules kept as tuples, now read from the specs."""
    drains = actions.kinds_where(lambda s: s.drains)
    assert drains == {Kind.DELETE_MASTER, Kind.DELETE_WORKER, Kind.UPGRADE_MASTER,
                      Kind.UPGRADE_WORKER}  # fmt: skip
    wide = actions.kinds_where(lambda s: s.cluster_wide)
    assert wide == {Kind.LAUNCH_APPS, Kind.LAUNCH_APP, Kind.REMOVE_APP, Kind.UPGRADE_BATCH}
    prepared = actions.kinds_where(lambda s: s.prepares_host)
    assert prepared == {Kind.INIT_CLUSTER, Kind.JOIN_MASTER, Kind.JOIN_WORKER,
                        Kind.UPGRADE_MASTER, Kind.UPGRADE_WORKER}  # fmt: skip
