"""A corpus of bad inputs: each gives one clear error line, exit 1, no traceback, and leaves the
state exactly as it was."""

from __future__ import annotations

import json
import tarfile

import pytest
import yaml

from tests.helpers import cluster_doc, make_image, sealer

GOOD = cluster_doc(["127.0.2.1"], ["127.0.2.2"])


def dump(*docs) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def with_spec(**changes) -> str:
    doc = json.loads(json.dumps(GOOD))
    doc["spec"].update(changes)
    return dump(doc)


def with_hosts(*groups) -> str:
    return with_spec(hosts=list(groups))


BOMB = (
    "\n".join(
        ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
        + [f"{c}: &{c} [{','.join(['*' + chr(ord(c) - 1)] * 10)}]" for c in "bcdefghi"]
    )
    + "\n"
)

# name -> (Clusterfile text, extra CLI args, expected part of the one error line)
CLUSTERFILES = {
    "truncated yaml": (dump(GOOD)[:-40] + "\n  - ips: [127.0.2.3", (), "invalid YAML"),
    "tab indentation": ("spec:\n\thosts: []\n", (), "indent with spaces, not tabs"),
    "hosts not a list": (
        with_spec(hosts="127.0.2.1"),
        (),
        "spec.hosts: '127.0.2.1' is not of type 'array'",
    ),
    "ips a string": (
        with_hosts({"ips": "127.0.2.1", "roles": ["master"]}),
        (),
        "is not of type 'array'",
    ),
    "unknown spec field": (with_spec(imagee="x"), (), "spec.imagee: unknown field 'imagee'"),
    "unknown top-level field": (dump({**GOOD, "specs": {}}), (), "specs: unknown field 'specs'"),
    "duplicate ip": (
        with_hosts({"ips": ["127.0.2.1", "127.0.2.1"], "roles": ["master"]}),
        (),
        "is already listed at spec.hosts[0].ips[0]",
    ),
    "ip in two roles": (
        with_hosts(
            {"ips": ["127.0.2.1"], "roles": ["master"]}, {"ips": ["127.0.2.1"], "roles": ["node"]}
        ),
        (),
        "an IP may appear only once",
    ),
    "no master": (
        with_hosts({"ips": ["127.0.2.1"], "roles": ["node"]}),
        (),
        "no host has the role 'master'",
    ),
    "unknown kind": (
        dump(GOOD, {"apiVersion": "v1", "kind": "Deployment"}),
        (),
        "unknown kind 'Deployment' in document 2",
    ),
    "document without kind": (dump(GOOD, {"apiVersion": "v1"}), (), "document 2 has no 'kind'"),
    "two cluster documents": (dump(GOOD, GOOD), (), "a second Cluster document"),
    "empty file": ("", (), "holds no YAML document"),
    "a list at the top": ("- a\n- b\n", (), "document 1 is not a mapping"),
    "wrong apiVersion": (
        dump({**GOOD, "apiVersion": "sealer.io/v1"}),
        (),
        "apiVersion: 'sealer.io/v1' must be 'sealer.io/v2'",
    ),
    "invalid cluster name": (
        dump({**GOOD, "metadata": {"name": "My_Cluster"}}),
        (),
        "metadata.name: 'My_Cluster' does not match",
    ),
    "invalid ip": (
        with_hosts({"ips": ["127.0.2.300"], "roles": ["master"]}),
        (),
        "'127.0.2.300' is not a valid IP address",
    ),
    "reversed range": (
        with_hosts({"ips": ["127.0.2.9-127.0.2.1"], "roles": ["master"]}),
        (),
        "is not a valid range",
    ),
    "range across families": (
        with_hosts({"ips": ["127.0.2.1-fd00::1"], "roles": ["master"]}),
        (),
        "is not a valid range",
    ),
    "mixed ipv4 and ipv6": (
        with_hosts(
            {"ips": ["127.0.2.1"], "roles": ["master"]}, {"ips": ["fd00::2"], "roles": ["node"]}
        ),
        (),
        "IPv4 and IPv6 addresses are mixed",
    ),
    "empty hosts": (with_hosts(), (), "spec.hosts: [] should be non-empty"),
    "empty roles": (
        with_hosts({"ips": ["127.0.2.1"], "roles": []}),
        (),
        "roles: [] should be non-empty",
    ),
    "env without equals": (
        with_spec(env=["NOEQUALS"]),
        (),
        "'NOEQUALS' is not of the form KEY=VALUE",
    ),
    "bad taint effect": (
        with_hosts({"ips": ["127.0.2.1"], "roles": ["master"], "taints": ["k=v:Sometimes"]}),
        (),
        "'k=v:Sometimes' is not a taint",
    ),
    "bad label key": (
        with_hosts({"ips": ["127.0.2.1"], "roles": ["master"], "labels": {"bad key!": "x"}}),
        (),
        "'bad key!' is not a valid label key",
    ),
    "ssh port out of range": (with_spec(ssh={"port": 70000}), (), "70000 is not a TCP port"),
    "ssh port not a number": (with_spec(ssh={"port": "ssh"}), (), "'ssh' is not a TCP port"),
    "missing env variable": (
        with_spec(ssh={"passwd": "${SEALER_TEST_UNSET_VAR}"}),
        (),
        "environment variable SEALER_TEST_UNSET_VAR is not set",
    ),
    "plugin with unknown phase": (
        dump(
            GOOD,
            {
                "apiVersion": "sealer.io/v1",
                "kind": "Plugin",
                "metadata": {"name": "p"},
                "spec": {"type": "SHELL", "action": "sometime", "data": "x"},
            },
        ),
        (),
        "unknown action 'sometime'; actions: pre-init-host",
    ),
    "config escaping the rootfs": (
        dump(
            GOOD,
            {
                "apiVersion": "sealer.io/v1",
                "kind": "Config",
                "metadata": {"name": "c"},
                "spec": {"path": "../etc/passwd", "data": "x"},
            },
        ),
        (),
        "spec.path: '../etc/passwd' does not match",
    ),
    "missing image folder": (
        with_spec(image="no-such-image"),
        (),
        "spec.image: image 'no-such-image': no such folder",
    ),
    "image not in the store": (
        with_spec(image="kubernetes:v9.9.9"),
        (),
        "sealer image load PATH --name kubernetes:v9.9.9",
    ),
    "yaml bomb": (BOMB, (), "YAML aliases expand to more than"),
    "bad max-unavailable": (
        dump(GOOD),
        ("--max-unavailable", "lots"),
        "--max-unavailable: 'lots' is not a count",
    ),
    "bad lock-timeout": (
        dump(GOOD),
        ("--lock-timeout", "soonish"),
        "--lock-timeout: 'soonish' is not a duration",
    ),
}


@pytest.fixture
def workdir(tmp_path, sealer_home):
    make_image(tmp_path / "image")
    state = sealer_home / "state" / "test.json"
    return tmp_path, state


def assert_one_clean_error(result, expected: str, path: str | None = None):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    if path:
        assert path in lines[0]


def state_snapshot(state_path):
    return state_path.read_bytes() if state_path.exists() else None


@pytest.fixture
def imported(workdir):
    """A recorded cluster, so that 'state unchanged' means something."""
    tmp_path, state = workdir
    good = tmp_path / "Clusterfile.good"
    good.write_text(dump(GOOD))
    assert sealer("import", "-f", str(good)).returncode == 0
    return tmp_path, state


@pytest.mark.parametrize("name", list(CLUSTERFILES))
def test_bad_clusterfile(name, imported):
    tmp_path, state = imported
    text, extra, expected = CLUSTERFILES[name]
    path = tmp_path / "Clusterfile"
    path.write_text(text)
    before = state_snapshot(state)
    result = sealer("plan", "-f", str(path), "--refresh=false", *extra)
    file_error = not extra or name == "bad max-unavailable"
    assert_one_clean_error(
        result, expected, str(path) if file_error and "--" not in expected else None
    )
    assert state_snapshot(state) == before


def test_huge_file(imported):
    tmp_path, state = imported
    path = tmp_path / "Clusterfile"
    with open(path, "wb") as f:
        f.write(b"# " + b"x" * (50 * 1024 * 1024))
    assert_one_clean_error(sealer("validate", "-f", str(path)), "larger than 16 MiB", str(path))


@pytest.mark.parametrize(
    "content", [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), b"\xff\xfe\xfa not utf-8"]
)
def test_binary_garbage(imported, content):
    tmp_path, state = imported
    path = tmp_path / "Clusterfile"
    path.write_bytes(content)
    before = state_snapshot(state)
    result = sealer("plan", "-f", str(path))
    assert_one_clean_error(result, str(path))
    assert state_snapshot(state) == before


@pytest.mark.parametrize(
    "metadata, expected",
    [
        (None, "not a ClusterImage: no Metadata file"),
        ("{not json", "Metadata is not valid JSON"),
        (json.dumps(["a", "list"]), "Metadata must be a JSON object"),
        (json.dumps({"version": 125}), "'version' is missing or not a string"),
        (
            json.dumps({"version": "v1.25.3", "ClusterRuntime": "rke2"}),
            "unknown ClusterRuntime 'rke2'",
        ),
        (
            json.dumps({"version": "v1.25.3", "cmd": "not a list"}),
            "'cmd' must be a list of strings",
        ),
    ],
)
def test_bad_image_metadata(imported, metadata, expected):
    tmp_path, state = imported
    image = tmp_path / "bad-image"
    image.mkdir()
    if metadata is not None:
        (image / "Metadata").write_text(metadata)
    path = tmp_path / "Clusterfile"
    path.write_text(with_spec(image="bad-image"))
    before = state_snapshot(state)
    assert_one_clean_error(sealer("plan", "-f", str(path)), expected, str(path))
    assert state_snapshot(state) == before


def test_unreadable_image_archive(imported):
    tmp_path, _ = imported
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    path = tmp_path / "Clusterfile"
    path.write_text(with_spec(image="broken.tar.gz"))
    assert_one_clean_error(sealer("plan", "-f", str(path)), "not a readable tar archive")


def test_archive_escaping_paths(imported):
    tmp_path, _ = imported
    evil = tmp_path / "evil.tar"
    (tmp_path / "x").write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "x", arcname="../../escape")
    path = tmp_path / "Clusterfile"
    path.write_text(with_spec(image="evil.tar"))
    assert_one_clean_error(sealer("plan", "-f", str(path)), "unsafe path in archive")


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{corrupt", "the state is not valid JSON"),
        ("", "the state is not valid JSON"),
        (json.dumps({"hello": "world"}), "not a sealer state document"),
        (
            json.dumps({"format_version": 99, "lineage": "x", "serial": 1, "hosts": {}}),
            "state format_version 99 is not supported",
        ),
        (
            json.dumps(
                {"format_version": 1, "lineage": "x", "serial": 1, "hosts": {}, "cluster": "other"}
            ),
            "belongs to cluster 'other', not 'test'",
        ),
    ],
)
def test_bad_state(workdir, content, expected):
    tmp_path, state = workdir
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(content)
    path = tmp_path / "Clusterfile"
    path.write_text(dump(GOOD))
    assert_one_clean_error(sealer("plan", "-f", str(path)), expected, str(state))
    assert state.read_text() == content


def _saved_plan(imported):
    """A plan saved with --out against the imported state (one more worker): (plan, state)."""
    tmp_path, state = imported
    path = tmp_path / "Clusterfile"
    path.write_text(dump(cluster_doc(["127.0.2.1"], ["127.0.2.2", "127.0.2.3"])))
    out = tmp_path / "plan.json"
    assert sealer("plan", "-f", str(path), "--refresh=false", "--out", str(out)).returncode == 0
    return out, state


def test_saved_plan_edited_by_hand(imported):
    out, state = _saved_plan(imported)
    saved = json.loads(out.read_text())
    saved["plan"]["actions"][0]["host"] = "127.0.2.99"
    out.write_text(json.dumps(saved))
    before = state_snapshot(state)
    assert_one_clean_error(sealer("apply", str(out)), "checksum does not match", str(out))
    assert state_snapshot(state) == before


def test_stale_saved_plan(imported):
    out, state = _saved_plan(imported)
    doc = json.loads(state.read_text())  # another run changes the state in between
    doc["serial"] += 1
    state.write_text(json.dumps(doc))
    before = state_snapshot(state)
    assert_one_clean_error(sealer("apply", str(out)), "Saved plan is stale")
    assert state_snapshot(state) == before


def test_saved_plan_of_another_lineage(imported):
    out, state = _saved_plan(imported)
    doc = json.loads(state.read_text())
    doc["lineage"] = "00000000-0000-0000-0000-000000000000"
    state.write_text(json.dumps(doc))
    assert_one_clean_error(sealer("apply", str(out)), "Saved plan does not match the given state")


def test_not_a_plan_file(imported):
    tmp_path, _ = imported
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"kind": "sealer-plan", "plan": {}}')
    assert_one_clean_error(sealer("show", str(bogus)), "checksum does not match")


@pytest.mark.parametrize(
    "version, runtime, expected",
    [
        ("v1.24.0", "kubernetes", "downgrading from v1.25.3 to v1.24.0 is not supported"),
        ("v1.27.0", "kubernetes", "skips a minor version"),
        ("v1.25.3", "k0s", "requires `sealer destroy` first"),
    ],
)
def test_refused_transitions(imported, version, runtime, expected):
    tmp_path, state = imported
    make_image(tmp_path / "other", version, runtime)
    path = tmp_path / "Clusterfile"
    path.write_text(with_spec(image="other"))
    before = state_snapshot(state)
    assert_one_clean_error(sealer("plan", "-f", str(path), "--refresh=false"), expected)
    assert state_snapshot(state) == before


def test_removing_every_master(imported):
    tmp_path, state = imported
    path = tmp_path / "Clusterfile"
    path.write_text(dump(cluster_doc(["127.0.2.5"], ["127.0.2.2"])))
    assert_one_clean_error(
        sealer("plan", "-f", str(path), "--refresh=false"), "removes every current master"
    )


def test_apply_without_tty_or_approval(imported):
    tmp_path, state = imported
    path = tmp_path / "Clusterfile"
    path.write_text(dump(cluster_doc(["127.0.2.1"], ["127.0.2.2", "127.0.2.3"])))
    before = state_snapshot(state)
    result = sealer("apply", "-f", str(path), "--refresh=false")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "pass --auto-approve to apply without asking (or apply a saved plan file)"
    )
    assert state_snapshot(state) == before
