"""Issue 13, class 1 and 4: a build never reads or writes the build machine through links that
its own inputs planted (RUN steps, copied folders), and copies no link out of the rootfs."""

from __future__ import annotations

import os
from pathlib import Path

from tests.test_build import IMAGES, build, built, kubefile


def test_a_metadata_link_planted_by_run_is_refused_and_nothing_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "existing").write_text("precious\n")
    for target in (outside / "created-by-build", outside / "existing"):
        context = tmp_path / f"ctx-{target.name}"
        kubefile(
            context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN rm Metadata && ln -s {target} Metadata\n"
        )
        result = build(context)
        assert result.returncode == 1, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Metadata goes through a symlink" in lines[0], result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["existing"]
    assert (outside / "existing").read_text() == "precious\n"


def test_a_folder_link_planted_by_run_stops_the_metadata_write_too(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    context = tmp_path / "ctx"
    kubefile(
        context,
        f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN mkdir -p m && ln -s {outside} m/x\n"
        "COPY Kubefile m/x/\n",
    )
    result = build(context)
    assert result.returncode == 1 and "m/x goes through a symlink" in result.stderr
    assert list(outside.iterdir()) == []


def test_copied_folders_keep_inner_links_and_refuse_links_out(tmp_path):
    context = tmp_path / "ctx"
    (context / "conf" / "sub").mkdir(parents=True)
    (context / "conf" / "app.yaml").write_text("a: 1\n")
    (context / "conf" / "sub" / "same.yaml").symlink_to("../app.yaml")  # stays inside: kept
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nCOPY conf etc/conf\n")
    assert build(context).returncode == 0
    kept = built() / "etc" / "conf" / "sub" / "same.yaml"
    assert kept.is_symlink() and os.readlink(kept) == "../app.yaml"

    for name, target in (("abs", "/etc/shadow"), ("up", "../../../../../../etc/shadow")):
        bad = tmp_path / f"bad-{name}"
        (bad / "conf").mkdir(parents=True)
        (bad / "conf" / "link").symlink_to(target)
        kubefile(bad, f"FROM {IMAGES / 'k3s-v1.25.3'}\nCOPY conf etc/conf\n")
        result = build(bad, "bad:v1")
        assert result.returncode == 1, name
        assert f"{bad / 'Kubefile'}:2: COPY: etc/conf/link: a symlink to" in result.stderr


def test_a_fifo_in_the_context_is_refused_not_waited_on(tmp_path):
    context = tmp_path / "ctx"
    (context / "conf").mkdir(parents=True)
    os.mkfifo(context / "conf" / "pipe")
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nCOPY conf etc/conf\n")
    result = build(context)  # before: blocked reading the FIFO for the cache key
    assert result.returncode == 1 and "pipe" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_is_root_inside_but_nobody_on_the_build_machine(tmp_path):
    secret = Path("/etc/sealer-test-root-only")
    secret.write_text("root-only content of the build machine\n")
    secret.chmod(0o600)
    context = tmp_path / "ctx"
    kubefile(
        context,
        f"FROM {IMAGES / 'k3s-v1.25.3'}\n"
        f"RUN id -u > uid; (cat {secret} || echo refused) > leaked 2>/dev/null; "
        "mkdir -p made && echo x > made/file && chmod 0640 made/file\n",
    )
    try:
        result = build(context)
    finally:
        secret.unlink()
    assert result.returncode == 0, result.stderr
    rootfs = built()
    assert (rootfs / "uid").read_text().strip() == "0"  # root, in its own user namespace
    assert (rootfs / "leaked").read_text().strip() == "refused"  # nobody, on this machine
    made = (rootfs / "made" / "file").stat()
    assert (made.st_uid, made.st_gid) == (0, 0) and (rootfs / "Metadata").stat().st_uid == 0
