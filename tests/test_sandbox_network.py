"""sandbox/network.make_room_for: the ARP table limits a fleet of netns hosts needs, raised and
never lowered (files standing in for /proc/sys/net/ipv4/neigh/default/gc_thresh2 and 3)."""

from __future__ import annotations

import pytest

from sandbox.network import NetworkError, make_room_for


def _limits(tmp_path, soft: int, hard: int) -> str:
    prefix = str(tmp_path / "gc_thresh")
    (tmp_path / "gc_thresh2").write_text(f"{soft}\n")
    (tmp_path / "gc_thresh3").write_text(f"{hard}\n")
    return prefix


def _read(tmp_path) -> tuple[int, int]:
    return tuple(int((tmp_path / f"gc_thresh{n}").read_text()) for n in (2, 3))


def test_a_thousand_hosts_raise_the_kernel_defaults(tmp_path):
    make_room_for(1000, _limits(tmp_path, 512, 1024))
    soft, hard = _read(tmp_path)
    assert soft >= 4 * 1000 and hard > soft  # this machine + a master + 2 per host


def test_limits_already_high_enough_are_left_alone(tmp_path):
    make_room_for(10, _limits(tmp_path, 512, 1024))
    assert _read(tmp_path) == (512, 1024)
    make_room_for(1000, _limits(tmp_path, 100000, 200000))
    assert _read(tmp_path) == (100000, 200000)


def test_limits_that_cannot_be_raised_are_a_one_line_error(tmp_path):
    # a read-only kernel setting holding a number: not even root may write it
    (tmp_path / "gc_thresh2").symlink_to("/proc/sys/fs/file-nr")
    (tmp_path / "gc_thresh3").write_text("1024\n")
    with pytest.raises(NetworkError, match=r"gc_thresh2 is \d+, 10000000 netns hosts need"):
        make_room_for(10_000_000, str(tmp_path / "gc_thresh"))
