"""The node watch's reading of `kubectl get --watch --output-watch-events` output."""

from __future__ import annotations

import json

from executors.runtimes.watch import decode_events


def event(kind: str, name: str) -> dict:
    return {"type": kind, "object": {"metadata": {"name": name}}}


def test_events_written_one_after_another_indented_or_not():
    text = json.dumps(event("ADDED", "a")) + "\n" + json.dumps(event("MODIFIED", "b"), indent=4)
    events, rest = decode_events(text + "\n")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "b"),
    ]
    assert rest == ""


def test_an_event_cut_between_two_reads_waits_for_its_end():
    text = json.dumps(event("ADDED", "a")) + json.dumps(event("DELETED", "b"), indent=2)
    cut = len(text) - 7
    events, rest = decode_events(text[:cut])
    assert [e["type"] for e in events] == ["ADDED"]
    events, rest = decode_events(rest + text[cut:])
    assert [e["type"] for e in events] == ["DELETED"] and rest == ""
