"""Connections shared across runs (executors/connections.py) and the width of a fan-out
(executors/fanout.py), without hosts: names, the pin command, who may share, the folder."""

from __future__ import annotations

import os
import resource
import stat
import subprocess

import pytest

from cluster.errors import SealerError
from cluster.model import SSH
from executors import connections, fanout, openssh
from executors.driver import Remote, Timeouts
from tests.helpers import ROOT

PIN = "SHA256:" + "A" * 43
LINEAGE = "3f0c5a52-8a35-4f0e-9a53-0d0c7e2b1f19"


def _remote(known_key: str = PIN, **ssh) -> Remote:
    settings = {"user": "root", "port": 22, "key_file": "/keys/id", **ssh}
    return Remote("198.18.0.2", SSH(**settings), Timeouts(), known_key)


def _reuse(tmp_path, persist: float = 600) -> connections.Reuse:
    return connections.Reuse(tmp_path, persist, LINEAGE)


def test_a_socket_name_changes_with_each_thing_it_is_bound_to():
    base = ("lineage", "root", "198.18.0.2", 22, PIN)
    names = {connections.socket_name(*base)}
    for i, other in enumerate(("other", "admin", "198.18.0.3", 2222, "SHA256:" + "B" * 43)):
        changed = list(base)
        changed[i] = other
        names.add(connections.socket_name(*changed))
    assert len(names) == 6
    assert all(len(name) == 24 for name in names)  # short: socket paths are ~100 bytes


def test_the_pin_command_vouches_only_for_the_pinned_key():
    command = openssh.pin_command(PIN)
    argv = ["/bin/sh", "-c", command.split("'")[1], "sealer-pin", PIN]

    def vouched(seen: str) -> str:
        done = subprocess.run([*argv, seen, "host", "ssh-ed25519", "AAAAkey"], capture_output=True)
        assert done.returncode == 0
        return done.stdout.decode()

    assert vouched(PIN) == "host ssh-ed25519 AAAAkey\n"
    assert vouched("SHA256:" + "B" * 43) == ""
    assert vouched("NONE") == ""


def test_only_hosts_that_need_no_secret_in_ssh_share_a_connection(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent: a password login stays own
    reuse = _reuse(tmp_path)
    assert isinstance(reuse.reader(_remote()), connections.SharedRemote)
    for remote in (
        _remote(known_key=""),  # never pinned: the run's connection pins it first
        _remote(known_key="SHA256:x' ; rm -rf / #"),  # not a fingerprint: never a command
        _remote(key_file=""),  # password login
        _remote(key_passphrase="secret"),
        _remote(user="admin", password="sudo-secret"),  # sudo would read it on stdin
    ):
        assert reuse.reader(remote) is remote
    assert _reuse(tmp_path, persist=0).reader(_remote()) is not None
    assert not isinstance(_reuse(tmp_path, persist=0).reader(_remote()), connections.SharedRemote)


def test_the_ssh_command_trusts_nothing_but_the_pin(tmp_path):
    remote = _remote()
    endpoint = connections.Endpoint("198.18.0.2", 22, "root", "/keys/id", PIN, LINEAGE)
    argv = connections.ssh_argv(endpoint, _reuse(tmp_path), remote.timeouts.connect)
    assert argv[argv.index("-F") + 1] == "/dev/null"
    assert argv.index("-F") < argv.index("--")
    for option in (
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=/dev/null",
        "GlobalKnownHostsFile=/dev/null",
        f"ControlPath=./{endpoint.name}",
        "ControlPersist=600",
    ):
        assert option in argv
    assert argv[-2:] == ["--", "198.18.0.2"]


def test_the_folder_is_made_private_and_refused_if_not_ours(tmp_path):
    folder = connections.folder_for(tmp_path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    os.chmod(folder, 0o755)
    connections.folder_for(tmp_path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700

    as_file = tmp_path / "file-home"
    as_file.mkdir()
    (as_file / "connections").write_text("")
    with pytest.raises(SealerError, match="not a directory"):
        connections.folder_for(as_file)

    linked = tmp_path / "linked-home"
    linked.mkdir()
    (linked / "connections").symlink_to(folder)
    with pytest.raises(SealerError, match="not a directory"):
        connections.folder_for(linked)

    if os.geteuid() == 0:  # only root can give a folder away
        theirs = tmp_path / "their-home"
        (theirs / "connections").mkdir(parents=True)
        os.chown(theirs / "connections", 65534, 65534)
        with pytest.raises(SealerError, match="owned by uid 65534"):
            connections.folder_for(theirs)


def test_listing_forgets_records_whose_master_is_gone(tmp_path):
    endpoint = connections.Endpoint("198.18.0.2", 22, "root", "/keys/id", PIN, LINEAGE)
    connections.remember(endpoint, _reuse(tmp_path))
    assert (tmp_path / f"{endpoint.name}.json").exists()
    assert connections.listing(tmp_path) == []
    assert not (tmp_path / f"{endpoint.name}.json").exists()


def test_the_fan_out_follows_the_host_count_and_the_file_limit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    assert fanout.fan_out(3, 64) == 3
    assert fanout.fan_out(1000, 64) == 64
    assert fanout.fan_out(1000, 10_000) == (1024 - 64) // 8  # 120: well inside ulimit -n 1024
    monkeypatch.setattr(resource, "getrlimit", lambda _: (100, 100))
    assert fanout.fan_out(1000, 64) == 4
    monkeypatch.setattr(resource, "getrlimit", lambda _: (70, 70))
    assert fanout.fan_out(1000, 64) == 1
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert fanout.fan_out(1000, 10_000) == fanout.CEILING


@pytest.mark.parametrize(
    ("image", "tool", "argv", "expected"),
    [
        ("k3s-v1.25.3", "k3s", ["--version"], "k3s version v1.25.3+k3s1 (SANDBOX STAND-IN)\n"),
        ("k0s-v1.26.1", "k0s", ["version"], "v1.26.1+k0s.0\n"),
        ("kubernetes-v1.25.3", "kubelet", ["--version"], "Kubernetes v1.25.3\n"),
        ("k3s-v1.25.3", "systemctl", ["is-active", "sealer-test-none"], "inactive\n"),
    ],
)
def test_the_stand_ins_answer_a_refresh_in_sh_as_their_python_would(image, tool, argv, expected):
    wrapper = ROOT / "examples" / "images" / image / "bin" / tool
    done = subprocess.run(["sh", str(wrapper), *argv], capture_output=True, text=True)
    assert done.stdout == expected
    assert done.returncode == (3 if tool == "systemctl" else 0)


def test_no_master_on_a_socket_is_told_apart_from_a_failed_command(tmp_path):
    from executors import mux

    missing = str(tmp_path / "gone")
    for call in (lambda: mux.run(missing, "true", b"", 5), lambda: mux.alive(missing)):
        with pytest.raises(mux.NoMaster):
            call()
    # a socket file whose master died: refused, also NoMaster (ssh then opens a new master)
    import socket

    stale = tmp_path / "stale"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(stale))
    with pytest.raises(mux.NoMaster):
        mux.run(str(stale), "true", b"", 5)
