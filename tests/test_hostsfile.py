"""sealer's marked lines in a hosts file, edited by the real shell command on a real file."""

import subprocess

from executors import hostsfile

ALIASES = "# sealer: host alias"
ENDPOINT = "# sealer: control-plane endpoint"
REGISTRY = "# sealer: registry"


def edit(tmp_path, monkeypatch, text: str, lines_by_mark: dict) -> str:
    hosts = tmp_path / "hosts"
    hosts.write_text(text)
    monkeypatch.setattr(hostsfile, "HOSTS", str(hosts))
    command = hostsfile.set_marked_lines_command(lines_by_mark)
    subprocess.run(["bash", "-c", command], check=True)
    return hosts.read_text()


def test_one_edit_sets_the_lines_of_several_marks_and_keeps_every_other_line(tmp_path, monkeypatch):
    before = (
        "127.0.0.1 localhost\n"
        f"10.0.0.9 old.example {ALIASES}\n"
        f"10.0.0.1 apiserver.cluster.local {ENDPOINT}\n"
        f"10.0.0.5 sea.hub {REGISTRY}\n"
        "::1 ip6-localhost\n"
    )
    after = edit(
        tmp_path,
        monkeypatch,
        before,
        {ALIASES: ["10.0.0.7 new.example"], ENDPOINT: ["10.0.0.2 apiserver.cluster.local"]},
    )
    assert after.splitlines() == [
        "127.0.0.1 localhost",
        f"10.0.0.5 sea.hub {REGISTRY}",  # another mark's line: not touched
        "::1 ip6-localhost",
        f"10.0.0.7 new.example {ALIASES}",
        f"10.0.0.2 apiserver.cluster.local {ENDPOINT}",
    ]


def test_a_mark_given_no_lines_has_its_lines_removed(tmp_path, monkeypatch):
    before = f"127.0.0.1 localhost\n10.0.0.9 old.example {ALIASES}\n"
    after = edit(tmp_path, monkeypatch, before, {ALIASES: []})
    assert after == "127.0.0.1 localhost\n"


def test_a_value_with_shell_characters_is_written_as_text(tmp_path, monkeypatch):
    after = edit(tmp_path, monkeypatch, "", {ALIASES: ["10.0.0.7 a$(touch x)'b"]})
    assert after == f"10.0.0.7 a$(touch x)'b {ALIASES}\n"
    assert not (tmp_path / "x").exists()
