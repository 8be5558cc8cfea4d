"""How sealer finds its way to a host (issue 32): the Clusterfile's bastion, ~/.ssh/config read
through the real `ssh -G`, and the OpenSSH ProxyCommand that kept connections use."""

from __future__ import annotations

import os
import pwd
import shlex

import pytest

from cluster import clusterfile
from cluster.errors import InputError, SealerError
from cluster.model import SSH, Jump
from cluster.records import State, StateFormatError
from executors import openssh
from operations import ssh_config
from tests.helpers import cluster_doc, write_clusterfile

PIN = "SHA256:" + "A" * 43


def _load(tmp_path, image, **ssh):
    doc = cluster_doc(["10.0.0.2"], ["10.0.0.3"], image=str(image))
    doc["spec"]["ssh"] = ssh
    doc["spec"]["hosts"][1]["ssh"] = {"bastion": None}
    cluster, _ = clusterfile.load(str(write_clusterfile(tmp_path / "Clusterfile", doc)), {})
    return cluster


def test_the_bastion_is_read_per_host_group(tmp_path, image):
    cluster = _load(tmp_path, image, pk="/k", bastion={"address": "jump.example.com", "port": "2222",
                                                       "user": "ops", "pk": "~/b"})  # fmt: skip
    master, worker = cluster.hosts["10.0.0.2"].ssh, cluster.hosts["10.0.0.3"].ssh
    assert master.jumps == (Jump("jump.example.com", 2222, "ops", master.jumps[0].key_file),)
    assert (
        master.jumps[0].key_file.endswith("/b") and master.jumps[0].name == "jump.example.com:2222"
    )
    assert worker.jumps == ()  # bastion: null, reached directly
    assert master.given == {"pk"} and master.agent


def test_a_bad_bastion_is_an_error_at_its_place(tmp_path, image):
    for bastion, where in (
        ({"address": "-oProxyCommand=x"}, "spec.ssh.bastion.address"),
        ({"address": "10.0.0.9", "port": 70000}, "spec.ssh.bastion.port"),
        ({"address": "10.0.0.9", "user": "Root;id"}, "spec.ssh.bastion.user"),
        ({"port": 22}, "spec.ssh.bastion"),
    ):
        with pytest.raises(InputError) as info:
            _load(tmp_path, image, bastion=bastion)
        assert any(where in problem for problem in info.value.problems), info.value.problems


def test_ssh_config_fills_what_the_clusterfile_leaves_open(tmp_path, monkeypatch):
    key = tmp_path / "id_config"
    key.write_text("key")
    config = tmp_path / "config"
    config.write_text(
        "Host 10.0.0.*\n    User ops\n    Port 2200\n"
        f"    IdentityFile {key}\n    ProxyJump jump@bastion.example.com:2022,10.9.9.9\n"
        "Host 10.0.1.5\n    HostName node5.internal\n    ProxyCommand nc %h %p\n"
        "Host bastion.example.com\n    HostName 192.0.2.7\n"
    )
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(config))
    hosts = {
        "10.0.0.2": SSH(),
        "10.0.0.3": SSH(user="root", port=22, key_file="/mine", given=frozenset({"user", "pk"})),
        "10.0.1.5": SSH(),
        "10.0.2.9": SSH(),
    }
    found = ssh_config.resolve(hosts)
    first = found["10.0.0.2"]
    assert (first.user, first.port, first.key_file) == ("ops", 2200, str(key))
    # each hop as `ssh -J` takes it: its own HostName from the config, OpenSSH's default user
    assert [(j.address, j.port, j.user) for j in first.jumps] == [
        ("192.0.2.7", 2022, "jump"),
        ("10.9.9.9", 22, pwd.getpwuid(os.getuid()).pw_name),
    ]
    explicit = found["10.0.0.3"]
    assert (explicit.user, explicit.key_file, explicit.port) == ("root", "/mine", 2200)
    routed = found["10.0.1.5"]
    assert routed.address == "node5.internal" and routed.proxy_command == "nc %h %p"
    assert found["10.0.2.9"] == hosts["10.0.2.9"]  # nothing in the config for it


def test_a_config_that_names_a_hostile_value_is_refused(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("Host 10.0.0.2\n    ProxyJump -oProxyCommand=id@x\n")
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(config))
    with pytest.raises(SealerError):
        ssh_config.resolve({"10.0.0.2": SSH()})
    monkeypatch.setenv("SEALER_SSH_CONFIG", str(tmp_path / "none"))
    assert ssh_config.resolve({"10.0.0.2": SSH()}) == {"10.0.0.2": SSH()}


def test_the_proxy_command_pins_every_hop_and_escapes_its_percent_signs():
    hop1 = Jump("192.0.2.1", 22, "a", "/k1")
    hop2 = Jump("192.0.2.2", 2222, "b", "/k2")
    pins = {hop1.name: PIN, hop2.name: PIN.replace("A", "B")}
    assert openssh.proxy_command((hop1,), {}, "10.0.0.2", 22, 5) is None  # not pinned yet
    with_password = Jump("192.0.2.1", 22, "a", password="pw")
    assert openssh.proxy_command((with_password,), pins, "10.0.0.2", 22, 5) is None
    command = openssh.proxy_command((hop1, hop2), pins, "10.0.0.2", 22, 5)
    # the ssh that runs it turns %% into %: then it is hop2's command line
    argv = shlex.split(command.replace("%%", "%"))
    assert argv[-4:] == ["-W", "10.0.0.2:22", "--", "192.0.2.2"]
    assert f"KnownHostsCommand={openssh.pin_command(pins[hop2.name])}" in argv
    inner = next(a for a in argv if a.startswith("ProxyCommand="))[len("ProxyCommand=") :]
    inner_argv = shlex.split(inner.replace("%%", "%"))
    assert inner_argv[-4:] == ["-W", "192.0.2.2:2222", "--", "192.0.2.1"]
    assert f"KnownHostsCommand={openssh.pin_command(PIN)}" in inner_argv
    assert "/dev/null" in argv and "/dev/null" in inner_argv  # -F /dev/null on each hop


def test_a_state_with_a_hostile_bastion_pin_is_refused():
    state = State.new("c").to_json()
    state["jump_keys"] = {"10.0.0.9:22": PIN}
    assert State.from_json(state).jump_keys == {"10.0.0.9:22": PIN}
    for hostile in ({"10.0.0.9:22": "SHA256:x' ; id"}, {"-oProxyCommand=id:22": PIN}):
        state["jump_keys"] = hostile
        with pytest.raises(StateFormatError):
            State.from_json(state)
