"""State surgery (state list / rm / mv), output, version and show without a Clusterfile, as a
real process on real state files. Nothing here reaches a host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile

M = ["127.0.2.1", "127.0.2.2", "127.0.2.3"]
W = ["127.0.2.11", "127.0.2.12"]


@pytest.fixture
def imported(tmp_path):
    make_image(tmp_path / "image", "v1.25.3")
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(M, W))
    state = tmp_path / "state.json"
    assert sealer("import", "-f", str(path), "--state", str(state)).returncode == 0
    return path, state


def _doc(state: Path) -> dict:
    return json.loads(state.read_text())


def test_state_rm_forgets_hosts_bumps_the_serial_keeps_a_backup_and_the_lineage(imported):
    path, state = imported
    before = _doc(state)
    result = sealer("state", "rm", M[0], W[1], "-f", str(path), "--state", str(state))
    assert result.returncode == 0, result.stderr
    assert "kubectl delete node" in result.stderr and "etcd member" in result.stderr
    after = _doc(state)
    assert set(after["hosts"]) == set(M[1:] + W[:1])
    assert after["serial"] == before["serial"] + 1 and after["lineage"] == before["lineage"]
    assert after["bootstrap_master"] == M[1]  # the bootstrap master was forgotten
    backup = json.loads(Path(f"{state}.backup").read_text())
    assert backup["serial"] == before["serial"] and M[0] in backup["hosts"]
    unknown = sealer("state", "rm", "127.0.2.99", "-f", str(path), "--state", str(state))
    assert unknown.returncode == 1 and "127.0.2.99 is not a host" in unknown.stderr
    assert _doc(state)["serial"] == after["serial"]  # a refused rm changes nothing


def test_state_mv_keeps_the_record_under_the_new_address(imported):
    path, state = imported
    record = _doc(state)["hosts"][M[0]]
    result = sealer("state", "mv", M[0], "127.0.2.9", "-f", str(path), "--state", str(state))
    assert result.returncode == 0, result.stderr
    doc = _doc(state)
    assert doc["hosts"]["127.0.2.9"] == record and M[0] not in doc["hosts"]
    assert doc["bootstrap_master"] == "127.0.2.9"
    taken = sealer("state", "mv", M[1], W[0], "-f", str(path), "--state", str(state))
    assert taken.returncode == 1 and "already a host" in taken.stderr
    bad = sealer("state", "mv", M[1], "not-an-ip", "-f", str(path), "--state", str(state))
    assert bad.returncode == 1 and "not an IP address" in bad.stderr


def test_state_list_output_and_show_need_no_clusterfile_with_a_state_file(imported, tmp_path):
    _, state = imported
    nowhere = str(tmp_path / "no-such-Clusterfile")
    listed = sealer("state", "list", "--state", str(state), "-f", nowhere)
    assert listed.returncode == 0, listed.stderr
    assert f"{M[0]}   master (bootstrap)" in listed.stdout
    shown = sealer("show", "--state", str(state), "-f", nowhere)
    assert shown.returncode == 0 and "cluster:   test" in shown.stdout
    out = json.loads(sealer("output", "--json", "--state", str(state), "-f", nowhere).stdout)
    assert out["cluster"] == "test" and out["masters"] == M and out["workers"] == W
    assert out["bootstrap_master"] == M[0] and out["kubernetes_version"] == "v1.25.3"
    assert set(out) >= {"api_endpoint", "runtime", "registry", "kubeconfig", "image"}
    text = sealer("output", "--state", str(state), "-f", nowhere).stdout
    assert "bootstrap_master   = 127.0.2.1" in text


def test_version():
    for argv in (["version"], ["--version"]):
        result = sealer(*argv)
        assert result.returncode == 0 and result.stdout.startswith("sealer 0.")
