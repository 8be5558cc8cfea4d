"""Issue 13, class 2: values that name something are checked before they can reach a command,
and whatever reaches one arrives as exactly one argument."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from cluster import clusterfile, names
from cluster.errors import SealerError
from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "cluster.schema.json").read_text())


@pytest.mark.parametrize(
    "group, spec, message",
    [
        ({"labels": {"pool": "a;reboot"}}, {}, "'a;reboot' is not a valid label value"),
        ({"labels": {"bad key;": "a"}}, {}, "is not a valid label key"),
        ({"taints": ["k=$(id):NoSchedule"]}, {}, "the value is not a valid label value"),
        ({}, {"ssh": {"user": "root;id", "pk": "/k"}}, "'root;id' is not a POSIX user name"),
        ({}, {"ssh": {"user": "-oProxyCommand=x", "pk": "/k"}}, "is not a POSIX user name"),
    ],
)
def test_hostile_names_in_a_clusterfile_are_one_line_errors(tmp_path, image, group, spec, message):
    doc = cluster_doc(["127.0.2.1"], ["127.0.2.2"], image=str(image), **spec)
    doc["spec"]["hosts"][1].update(group)
    path = write_clusterfile(tmp_path / "Clusterfile", doc)
    result = sealer("validate", "-f", str(path))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert all(line.startswith(f"{path}:") for line in result.stderr.strip().splitlines())


def test_an_ipv6_scope_id_is_refused(tmp_path, image):
    doc = cluster_doc(["fe80::1%eth0;id"], image=str(image))
    path = write_clusterfile(tmp_path / "Clusterfile", doc)
    result = sealer("validate", "-f", str(path))
    assert result.returncode == 1 and "an IPv6 scope id (%...) is not accepted" in result.stderr


def test_an_image_version_with_shell_characters_is_refused(tmp_path):
    rootfs = make_image(tmp_path / "image", version="v1.25.3;reboot")
    path = write_clusterfile(
        tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], image=str(rootfs))
    )
    result = sealer("validate", "-f", str(path))
    assert result.returncode == 1
    assert "'v1.25.3;reboot' is not of the form vMAJOR.MINOR.PATCH" in result.stderr


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=60,
    )
)
@settings(max_examples=150, deadline=None)
def test_any_value_arrives_as_one_argument_through_a_real_bash(value):
    command = shlex.join(["printf", "%s\\0", value])
    out = subprocess.run(["bash", "-c", command], capture_output=True, check=True).stdout
    assert out == value.encode() + b"\0"


@given(st.text(max_size=40))
def test_accepted_node_names_hold_no_shell_character(name):
    if not names.node_name_problem(name):
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")


@given(st.text(max_size=40))
def test_accepted_versions_and_users_hold_no_shell_character(text):
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.+_$")
    for problem in (names.version_problem, names.user_problem, names.label_value_problem):
        if not problem(text):
            assert set(text) <= safe


@given(from_schema(SCHEMA))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_clusterfile_the_schema_allows_loads_or_fails_cleanly(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("gen") / "Clusterfile"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        clusterfile.load(str(path))
    except SealerError as e:  # InputError included: one line per problem, never a traceback
        assert str(e) and "Traceback" not in str(e)


def test_a_cluster_name_from_a_state_file_never_becomes_a_path_in_a_command():
    from executors import distribute

    assert distribute.rootfs_dir("prod-1") == "/var/lib/sealer/data/prod-1/rootfs"
    for name in ("x;reboot", "../../etc", "a b", ""):
        with pytest.raises(SealerError, match="is not a cluster name"):
            distribute.rootfs_dir(name)
