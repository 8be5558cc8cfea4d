"""The CLI as a real process: plan output, JSON, exit codes, saved plans, graph, import, show."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile

# Loopback addresses where nothing listens: these tests plan, they never reach a host.
M = ["127.0.2.1", "127.0.2.2", "127.0.2.3"]
W = ["127.0.2.11", "127.0.2.12"]


@pytest.fixture
def clusterfile(tmp_path):
    make_image(tmp_path / "image", "v1.25.3")
    make_image(tmp_path / "image-next", "v1.26.1")
    return write_clusterfile(tmp_path / "Clusterfile", cluster_doc(M, W))


def test_every_command_has_help_with_an_example():
    top = sealer("--help")
    assert top.returncode == 0 and "examples:" in top.stdout
    for command in [
        "validate",
        "plan",
        "graph",
        "show",
        "import",
        "image",
        "image load",
        "image ls",
        "build",
        "image inspect",
        "image save",
        "image rm",
        "state pull",
        "state push",
        "state versions",
        "state list",
        "state rm",
        "state mv",
        "output",
        "version",
        "scale-up",
        "delete",
        "upgrade",
    ]:
        result = sealer(*command.split(), "--help")
        assert result.returncode == 0, command
        assert "example:" in result.stdout, command


def test_validate(clusterfile):
    result = sealer("validate", "-f", str(clusterfile))
    assert result.returncode == 0
    assert "valid. Cluster 'test': 3 master(s), 2 worker(s)" in result.stdout


def test_validate_error_is_one_line_per_problem_exit_1(tmp_path, clusterfile):
    doc = cluster_doc(M, ["127.0.2.300"])
    write_clusterfile(clusterfile, doc)
    result = sealer("validate", "-f", str(clusterfile))
    assert result.returncode == 1
    assert result.stderr == (
        f"{clusterfile}:18:7: spec.hosts[1].ips[0]: '127.0.2.300' is not a valid IP address\n"
    )


def test_plan_human_output_and_detailed_exitcode(clusterfile):
    result = sealer("plan", "-f", str(clusterfile), "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    out = result.stdout
    assert "  + create\n" in out and "~ update" not in out  # the legend lists used symbols only
    assert "# init_cluster.127.0.2.1 will be created" in out
    assert '+ join_worker "127.0.2.12" {' in out
    assert out.rstrip().endswith("Plan: 5 to add, 0 to change, 0 to destroy.")
    assert "\033[" not in out


def test_plan_json_document(clusterfile):
    result = sealer("plan", "-f", str(clusterfile), "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["format_version"] == "1" and doc["cluster"] == "test"
    assert doc["lineage"] is None and doc["serial"] == 0
    assert doc["summary"] == {"add": 5, "change": 0, "destroy": 0}
    first = doc["actions"][0]
    assert set(first) == {"id", "kind", "host", "roles", "depends_on", "details"}
    assert first["kind"] == "init_cluster" and first["host"] == "127.0.2.1"


def test_import_then_no_changes_then_upgrade_and_scale(tmp_path, clusterfile):
    result = sealer("import", "-f", str(clusterfile))
    assert result.returncode == 0, result.stderr
    again = sealer("import", "-f", str(clusterfile))
    assert again.returncode == 1 and "already exists" in again.stderr
    result = sealer("plan", "-f", str(clusterfile), "--detailed-exitcode", "--refresh=false")
    assert result.returncode == 0
    assert result.stdout == "No changes. Your cluster matches the Clusterfile.\n"

    write_clusterfile(clusterfile, cluster_doc(M, [W[0], "127.0.2.15"], image="image-next"))
    result = sealer("plan", "-f", str(clusterfile), "--detailed-exitcode", "--max-unavailable", "1")
    assert result.returncode == 1  # no host answers at these addresses: no plan claims anything
    assert "? 127.0.2.1: unknown — down" in result.stdout and "--refresh=false" in result.stderr
    result = sealer(
        "plan",
        "-f",
        str(clusterfile),
        "--detailed-exitcode",
        "--max-unavailable",
        "1",
        "--refresh=false",
    )
    assert result.returncode == 2
    assert (
        "# upgrade_master.127.0.2.1 will be updated in-place (because v1.25.3 -> v1.26.1)"
        in result.stdout
    )
    assert "# delete_worker.127.0.2.12 will be destroyed" in result.stdout
    assert "Plan: 1 to add, 4 to change, 1 to destroy." in result.stdout


def test_ssh_change_alone_gives_exit_0(tmp_path, clusterfile):
    assert sealer("import", "-f", str(clusterfile)).returncode == 0
    doc = cluster_doc(M, W)
    doc["spec"]["ssh"] = {"user": "admin", "passwd": "other", "port": "2200"}
    write_clusterfile(clusterfile, doc)
    plan = sealer("plan", "-f", str(clusterfile), "--detailed-exitcode", "--refresh=false")
    assert plan.returncode == 0


def test_show_state_text_and_json(clusterfile):
    result = sealer("show", "-f", str(clusterfile))
    assert result.returncode == 0 and "No state for cluster 'test' yet" in result.stdout
    sealer("import", "-f", str(clusterfile))
    text = sealer("show", "-f", str(clusterfile)).stdout
    assert "serial:    1" in text and "127.0.2.12" in text
    doc = json.loads(sealer("show", "-f", str(clusterfile), "--json").stdout)
    assert doc["serial"] == 1 and set(doc["hosts"]) == set(M + W)
    assert doc["bootstrap_master"] == "127.0.2.1" and doc["image"]["version"] == "v1.25.3"


def test_state_location_flag_and_env(tmp_path, clusterfile, sealer_home):
    assert (
        sealer("import", "-f", str(clusterfile), "--state", str(tmp_path / "a.json")).returncode
        == 0
    )
    assert (tmp_path / "a.json").exists()
    assert (
        sealer(
            "import", "-f", str(clusterfile), env={"SEALER_STATE": str(tmp_path / "b.json")}
        ).returncode
        == 0
    )
    assert (tmp_path / "b.json").exists()
    assert sealer("import", "-f", str(clusterfile)).returncode == 0
    assert (sealer_home / "state" / "test.json").exists()


def test_plan_out_and_show_planfile(tmp_path, clusterfile):
    out = tmp_path / "plan.json"
    result = sealer("plan", "-f", str(clusterfile), "--out", str(out))
    assert result.returncode == 0 and f"sealer apply {out}" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["sources"]["clusterfile_digest"].startswith("sha256:")
    assert saved["sources"]["image_digest"].startswith("sha256:")
    assert saved["plan"]["serial"] == 0
    shown = sealer("show", str(out))
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in shown.stdout
    assert json.loads(sealer("show", "--json", str(out)).stdout)["summary"]["add"] == 5
    saved["plan"]["actions"].pop()
    out.write_text(json.dumps(saved))
    edited = sealer("show", str(out))
    assert edited.returncode == 1
    assert "checksum does not match its content (edited by hand?)" in edited.stderr


def test_plan_destroy_and_graph(clusterfile):
    sealer("import", "-f", str(clusterfile))
    result = sealer("plan", "-f", str(clusterfile), "--destroy", "--detailed-exitcode")
    assert result.returncode == 2
    assert "Plan: 0 to add, 0 to change, 5 to destroy." in result.stdout
    dot = sealer("graph", "-f", str(clusterfile), "--destroy").stdout
    assert dot.startswith('digraph "test" {')
    assert '"reset_cluster.127.0.2.11" -> "reset_cluster.127.0.2.2";' in dot


def test_plan_refusal_is_one_line(tmp_path, clusterfile):
    sealer("import", "-f", str(clusterfile))
    make_image(tmp_path / "image-k3s", "v1.25.3", runtime="k3s")
    write_clusterfile(clusterfile, cluster_doc(M, W, image="image-k3s"))
    result = sealer("plan", "-f", str(clusterfile))
    assert result.returncode == 1
    assert result.stderr == (
        "Error: changing the runtime from kubernetes to k3s requires "
        "`sealer destroy` first (a cluster cannot move between "
        "distributions in place)\n"
    )


def test_lock_timeout_flag_is_checked(clusterfile):
    result = sealer("plan", "-f", str(clusterfile), "--lock-timeout", "soon")
    assert result.returncode == 1
    assert "--lock-timeout: 'soon' is not a duration" in result.stderr


def _run_in_pty(args, env):
    main, secondary = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "sealer_cli.main", *args],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
    )
    os.close(secondary)
    data = b""
    try:
        while chunk := os.read(main, 65536):
            data += chunk
    except OSError:
        pass
    os.close(main)
    return proc.returncode, data.decode()


def test_colour_only_on_a_tty_and_never_under_no_color(clusterfile):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    _, coloured = _run_in_pty(["plan", "-f", str(clusterfile)], env)
    assert "\033[32m+\033[0m" in coloured
    _, plain = _run_in_pty(["plan", "-f", str(clusterfile)], {**env, "NO_COLOR": "1"})
    assert "\033[" not in plain and "init_cluster" in plain
