"""The pause between connection attempts, and how the tried-again attempts are said."""

from __future__ import annotations

from executors import retrying
from operations.settings import RetryTally
from views.text import render_retries


def test_pauses_grow_with_jitter_and_stop_growing():
    lowest = [retrying.pause(n, draw=lambda: 0.0) for n in range(8)]
    highest = [retrying.pause(n, draw=lambda: 1.0) for n in range(8)]
    assert lowest[:3] == [0.25, 0.5, 1.0] and highest[:3] == [0.5, 1.0, 2.0]
    assert max(highest) == retrying.LONGEST_PAUSE  # never longer
    drawn = {retrying.pause(2) for _ in range(50)}
    assert len(drawn) > 1 and all(1.0 <= p <= 2.0 for p in drawn)  # not all together


def test_no_room_for_an_attempt_past_the_deadline():
    import time

    now = time.monotonic()
    assert retrying.room_for(now + 30, 1.0, 10.0)
    assert not retrying.room_for(now + 5, 1.0, 10.0)


def test_the_note_counts_every_attempt_and_names_the_hosts():
    tally = RetryTally()
    for _ in range(2):
        tally("127.0.1.2", "cannot connect over SSH on port 22: Error reading SSH protocol banner")
    tally("127.0.1.3", "SSH connection timed out after 10s")
    note = render_retries(tally.by_host())
    assert note.startswith("Note: 3 SSH connection attempt(s)")
    assert "127.0.1.2 (2x cannot connect over SSH on port 22: Error reading" in note
    assert "127.0.1.3 (SSH connection timed out after 10s)" in note


def test_the_reason_drops_what_was_tried():
    message = "cannot connect over SSH on port 22: reset (tried root@h:22 with key /k)"
    assert retrying.short_reason(message) == "cannot connect over SSH on port 22: reset"
