"""The typed state: compatible with the files earlier releases wrote, one format check."""

from __future__ import annotations

import json

import pytest

from cluster.records import HostRecord, State, StateFormatError, set_field, set_host, update_host
from state.document import apply_patch

# Written by sealer 0.1.0 (the release before the typed state): no launch/configs digests.
RELEASED = """{
 "format_version": 1,
 "lineage": "0b7e3f0e-4a53-4b39-8c39-5c8d1b1e0f6a",
 "serial": 4,
 "cluster": "prod",
 "image": {"name": "k3s:v1.25.3", "digest": "sha256:ab", "version": "v1.25.3", "runtime": "k3s"},
 "bootstrap_master": "10.0.0.1",
 "hosts": {
  "10.0.0.1": {"roles": ["master"], "labels": {}, "taints": [], "env_digest": "hmac-sha256:1",
               "version": "v1.25.3", "status": "ready", "hostname": "m1", "host_key": "SHA256:k"},
  "10.0.0.2": {"roles": ["node"], "labels": {"pool": "a"}, "taints": ["t=v:NoSchedule"],
               "env_digest": "hmac-sha256:2", "version": "v1.25.3", "status": "imported",
               "hostname": "", "host_key": ""}
 },
 "created_at": "2026-10-01T10:00:00Z",
 "updated_at": "2026-10-02T10:00:00Z"
}"""


def test_a_state_written_by_the_last_release_loads_and_round_trips():
    doc = json.loads(RELEASED)
    state = State.from_json(doc)
    assert state.runtime == "k3s" and state.masters == ["10.0.0.1"] and state.serial == 4
    assert state.hosts["10.0.0.2"].taints == ("t=v:NoSchedule",)
    assert state.launch_digest is None and state.configs_digest is None
    again = state.to_json()
    assert {
        k: v
        for k, v in again.items()
        if k not in ("launch_digest", "configs_digest", "control_plane", "apps")
    } == doc
    assert State.from_json(again) == state


def test_a_state_without_an_image_is_a_kubernetes_state():
    doc = {**json.loads(RELEASED), "image": None}
    assert State.from_json(doc).runtime == "kubernetes"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"format_version": 2, "lineage": "l", "serial": 1, "hosts": {}}, "format_version 2"),
        ({"format_version": 1, "serial": 1, "hosts": {}}, "needs lineage"),
        ([], "not a sealer state"),
    ],
)
def test_the_format_is_checked_in_one_place(doc, message):
    with pytest.raises(StateFormatError, match=message):
        State.from_json(doc, "s.json")


def test_typed_patches_and_journal_replay_agree():
    doc = json.loads(RELEASED)
    state = State.from_json(doc)
    record = HostRecord(("node",), version="v1.25.3", status="ready", hostname="w9")
    patches = [
        set_host("10.0.0.9", record),
        update_host("10.0.0.2", version="v1.26.0", labels={"pool": "b"}),
        update_host("10.0.0.77", version="ignored"),  # a host that is gone: nothing happens
        {"op": "delete_host", "ip": "10.0.0.1"},
        set_field("bootstrap_master", "10.0.0.2"),
        set_field("launch_digest", "sha256:l"),
    ]
    for patch in patches:
        state = state.patched(patch)
        apply_patch(doc, patch)
    assert State.from_json(doc) == state
    assert set(state.hosts) == {"10.0.0.2", "10.0.0.9"} and state.bootstrap_master == "10.0.0.2"


def test_only_known_fields_can_be_patched():
    with pytest.raises(ValueError):
        set_field("lineage", "x")
