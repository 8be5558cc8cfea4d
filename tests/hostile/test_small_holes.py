"""Issue 13, class 6: the smaller holes, each closed at its root."""

from __future__ import annotations

from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile


def test_schema_errors_about_secret_fields_never_show_the_value(tmp_path, image):
    doc = cluster_doc(["127.0.2.1"], image=str(image))
    doc["spec"]["ssh"]["passwd"] = 987654321
    doc["spec"]["env"] = [1234567]
    path = write_clusterfile(tmp_path / "Clusterfile", doc)
    result = sealer("validate", "-f", str(path))
    assert result.returncode == 1
    assert "spec.ssh.passwd: must be of type 'string'" in result.stderr
    assert "987654321" not in result.stderr and "1234567" not in result.stderr


def test_image_load_does_not_silently_replace_another_image(tmp_path):
    first, second = make_image(tmp_path / "a"), make_image(tmp_path / "b", version="v1.25.4")
    assert sealer("image", "load", str(first), "--name", "app:v1").returncode == 0
    again = sealer("image", "load", str(first), "--name", "app:v1")  # the same content: fine
    assert again.returncode == 0
    other = sealer("image", "load", str(second), "--name", "app:v1")
    assert other.returncode == 1 and "pass --force to replace it" in other.stderr
    forced = sealer("image", "load", str(second), "--name", "app:v1", "--force")
    assert forced.returncode == 0 and "v1.25.4" in forced.stdout


def test_run_checks_the_cluster_name_before_writing_anything(tmp_path, sealer_home, image):
    result = sealer("run", str(image), "--masters", "127.0.2.1", "--name", "../../escaped")
    assert (
        result.returncode == 1 and "--name '../../escaped' is not a cluster name" in result.stderr
    )
    assert not (sealer_home.parent / "escaped").exists() and not (tmp_path / "escaped").exists()


def test_run_reads_the_password_from_a_file_and_warns_about_the_flag(tmp_path, sealer_home, image):
    secret = tmp_path / "pw"
    secret.write_text("Pw-from-file\n")
    # 127.0.2.x: nothing listens there; the run stops at the refresh-free first connection
    common = [str(image), "--masters", "127.0.2.1", "--ssh-timeout", "1s", "--retries", "0"]
    from_file = sealer("run", *common, "--passwd-file", str(secret), timeout=120)
    written = (sealer_home / "clusters" / "my-cluster" / "Clusterfile").read_text()
    assert "Pw-from-file" not in written and "${SEALER_RUN_SSH_PASSWORD}" in written
    assert "Pw-from-file" not in from_file.stdout + from_file.stderr
    flagged = sealer("run", *common, "--passwd", "Pw-on-argv", timeout=120)
    assert "--passwd shows its secret to every user of this machine" in flagged.stderr


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path, image):
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], image=str(image)))
    text = path.read_text().replace("  image:", "  image: other\n  image:", 1)
    path.write_text(text)
    result = sealer("validate", "-f", str(path))
    assert result.returncode == 1
    assert "duplicate key 'image' (first given at line" in result.stderr


def test_a_malformed_state_is_named_not_an_internal_error(tmp_path, image):
    import json

    clusterfile = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], name="c"))
    state = tmp_path / "c.json"
    base = {"format_version": 1, "lineage": "l", "serial": 3, "cluster": "c", "image": None}
    for hosts, message in (
        ({"127.0.2.1": "master"}, "hosts['127.0.2.1'] must be a mapping"),
        ({"127.0.2.1": {"roles": ["master"], "labels": ["a"]}}, ".labels must be a mapping"),
    ):
        state.write_text(json.dumps({**base, "hosts": hosts}))
        for args in (("show",), ("plan", "--refresh=false")):
            result = sealer(*args, "-f", str(clusterfile), "--state", str(state))
            assert result.returncode == 1 and message in result.stderr, result.stderr
            assert "internal error" not in result.stderr
        pushed = sealer(
            "state", "push", str(state), "--cluster", "c", "--state", str(tmp_path / "o.json")
        )
        assert pushed.returncode == 1 and message in pushed.stderr


def test_run_takes_env_and_a_key_passphrase_that_never_reaches_the_clusterfile(
    image, sealer_home, tmp_path
):
    key = tmp_path / "id"
    key.write_text("not a key\n")
    common = [str(image), "--masters", "127.0.2.1", "--ssh-timeout", "1s", "--retries", "0"]
    result = sealer(
        "run", *common, "--pk", str(key), "--pk-passwd", "Pass-on-argv", "-e", "A=1", timeout=120
    )
    written = (sealer_home / "clusters" / "my-cluster" / "Clusterfile").read_text()
    assert "Pass-on-argv" not in written and "${SEALER_RUN_SSH_KEY_PASSPHRASE}" in written
    assert "- A=1" in written
    assert "Pass-on-argv" not in result.stdout + result.stderr.replace("--pk-passwd", "")
    assert "--pk-passwd shows its secret" in result.stderr
