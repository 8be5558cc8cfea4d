"""Issue 13, classes 4 and 6: the operator's files stay out of images and tarballs, and the
state's own files (lock, journal) are never opened through a planted symlink."""

from __future__ import annotations

import os
import tarfile

import pytest

from cluster import beneath
from cluster.image import build_image
from cluster.model import Document
from executors import distribute
from state.document import set_host
from state.local import LocalBackend, StateError
from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile


def test_a_merged_config_never_reads_through_a_link_in_the_rootfs(tmp_path):
    secret = tmp_path / "operator-secret"
    secret.write_text("password: hunter2\n")
    rootfs = make_image(tmp_path / "image")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "app.yaml").symlink_to(secret)
    image = build_image("image", rootfs)
    config = Document(
        "Config", "app", {"spec": {"path": "etc/app.yaml", "data": "a: 1\n", "strategy": "merge"}}
    )
    with pytest.raises(beneath.LinkRefused, match="etc/app.yaml goes through a symlink"):
        distribute.rendered_configs(image, (config,))
    (rootfs / "etc" / "app.yaml").unlink()
    (rootfs / "etc" / "app.yaml").write_text("b: 2\n")
    merged = distribute.rendered_configs(image, (config,))["etc/app.yaml"].decode()
    assert "a: 1" in merged and "b: 2" in merged  # a real file still merges


def test_the_rootfs_tarball_is_owned_by_root_not_by_the_operator(tmp_path):
    rootfs = make_image(tmp_path / "image")
    (rootfs / "bin" / "tool").chmod(0o755)
    os.chown(rootfs / "bin" / "tool", 4242, 4343)
    image = build_image("image", rootfs)
    with tarfile.open(distribute.tarball(image, {"etc/x.yaml": b"x: 1\n"})) as tar:
        owners = {(m.name, m.uid, m.gid, m.uname) for m in tar.getmembers()}
    assert owners and all(
        uid == 0 and gid == 0 and uname == "root" for _, uid, gid, uname in owners
    )


def test_a_symlink_planted_as_the_state_lock_is_refused_and_its_target_kept(tmp_path, image):
    victim = tmp_path / "victim"
    victim.write_text("do not truncate\n")
    state = tmp_path / "state" / "c.json"
    state.parent.mkdir()
    (state.parent / "c.json.lock").symlink_to(victim)
    clusterfile = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], name="c"))
    result = sealer("show", "-f", str(clusterfile), "--state", str(state))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {state}.lock: is a symlink; refused (remove it)"
    assert victim.read_text() == "do not truncate\n"


def test_a_symlink_planted_as_the_journal_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    backend = LocalBackend(tmp_path / "c.json")
    (tmp_path / "c.json.journal").symlink_to(victim)
    with backend.lock("apply"):
        doc = backend.read("c")
        with pytest.raises(StateError, match="journal: is a symlink; refused"):
            backend.append(doc, set_host("10.0.0.1", {"roles": ["master"]}))
    assert victim.read_text() == "keep\n"


def test_the_folder_itself_may_be_reached_through_a_link(tmp_path):
    rootfs = make_image(tmp_path / "image")
    (tmp_path / "current").symlink_to(rootfs)  # e.g. spec.image: ./current
    assert beneath.read_file(tmp_path / "current", "Metadata") is not None
    assert build_image("current", tmp_path / "current").version == "v1.25.3"


def test_an_output_file_is_never_written_through_a_link_and_never_left_wider(tmp_path):
    """Issue 33: `kubeconfig -o`, `etcd backup -o` and `import --discover` write through
    cluster.outputs: a link planted at the path is refused and its target is untouched."""
    from cluster.errors import SealerError
    from cluster.outputs import write_output

    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = tmp_path / "kubeconfig"
    link.symlink_to(victim)
    with pytest.raises(SealerError, match="is a symbolic link; refused"):
        write_output(link, "apiVersion: v1\n")
    assert victim.read_text() == "keep me\n" and link.is_symlink()
    dangling = tmp_path / "snapshot.db"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(SealerError):
        write_output(dangling, b"etcd")
    assert not (tmp_path / "would-be-created").exists()
    existing = tmp_path / "wide"
    existing.write_text("old")
    existing.chmod(0o666)
    write_output(existing, b"secret")
    assert existing.read_bytes() == b"secret" and (existing.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary


def test_the_cli_writes_its_output_files_through_the_one_writer():
    """The three commands that write where the user says use cluster.outputs, nothing else."""
    from pathlib import Path

    import sealer_cli.commands as commands
    from operations import import_cluster

    for module in (commands, import_cluster):
        text = Path(module.__file__).read_text()
        assert "write_output(" in text and "O_TRUNC" not in text and ".write_text(" not in text
