"""ClusterImages: runtime choice, Metadata checks, digests, archives and the local store."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from cluster import image as images
from cluster.errors import SealerError
from tests.helpers import make_image, sealer


@pytest.mark.parametrize(
    "metadata, runtime",
    [
        ({}, "kubernetes"),
        ({"ClusterRuntime": "kubernetes"}, "kubernetes"),
        ({"ClusterRuntime": "k8s"}, "kubernetes"),
        ({"ClusterRuntime": "K3S"}, "k3s"),
        ({"ClusterRuntime": "k0s"}, "k0s"),
        ({"labels": {images.RUNTIME_LABEL: "k3s"}}, "k3s"),
    ],
)
def test_choose_runtime(metadata, runtime):
    assert images.choose_runtime(metadata) == runtime


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(SealerError, match="unknown ClusterRuntime 'rke2'; supported: kubernetes"):
        images.choose_runtime({"ClusterRuntime": "rke2"})


def test_metadata_missing_or_broken(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    with pytest.raises(SealerError, match="not a ClusterImage: no Metadata file"):
        images.resolve("img", tmp_path)
    (folder / "Metadata").write_text("{not json")
    with pytest.raises(SealerError, match="Metadata is not valid JSON"):
        images.resolve("img", tmp_path)
    (folder / "Metadata").write_text(json.dumps({"version": "latest"}))
    with pytest.raises(SealerError, match="'latest' is not of the form vMAJOR.MINOR.PATCH"):
        images.resolve("img", tmp_path)


def test_digest_covers_content_names_and_exec_bits(tmp_path):
    folder = make_image(tmp_path / "img")
    first = images.rootfs_digest(folder)
    assert first == images.rootfs_digest(folder)
    (folder / "bin" / "tool").chmod(0o644)
    assert images.rootfs_digest(folder) != first
    (folder / "bin" / "tool").chmod(0o755)
    assert images.rootfs_digest(folder) == first
    (folder / "bin" / "tool").write_text("changed")
    assert images.rootfs_digest(folder) != first


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz")])
def test_archives_resolve_to_the_same_digest_as_the_folder(tmp_path, suffix, mode):
    folder = make_image(tmp_path / "rootfs", version="v1.26.1", runtime="k0s")
    archive = tmp_path / f"image{suffix}"
    with tarfile.open(archive, mode) as tar:
        tar.add(folder, arcname="rootfs")
    from_dir = images.resolve("rootfs", tmp_path)
    from_tar = images.resolve(archive.name, tmp_path)
    assert from_tar.digest == from_dir.digest
    assert (from_tar.runtime, from_tar.version) == ("k0s", "v1.26.1")


def test_archive_with_an_escaping_path_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    payload = tmp_path / "x"
    payload.write_text("x")
    with tarfile.open(archive, "w") as tar:
        tar.add(payload, arcname="../../escape")
    with pytest.raises(SealerError, match="unsafe path in archive"):
        images.resolve("evil.tar", tmp_path)


def test_store_load_ls_and_resolve_by_name(tmp_path, sealer_home):
    folder = make_image(tmp_path / "rootfs", version="v1.25.3", runtime="k3s")
    result = sealer("image", "load", str(folder))
    assert result.returncode == 0, result.stderr
    assert "Loaded k3s:v1.25.3 (k3s v1.25.3, sha256:" in result.stdout
    result = sealer("image", "load", str(folder), "--name", "registry.local/apps/k3s:custom")
    assert result.returncode == 0, result.stderr
    listing = sealer("image", "ls").stdout
    assert "k3s:v1.25.3" in listing and "registry.local/apps/k3s:custom" in listing
    stored = images.resolve("k3s:v1.25.3", tmp_path / "elsewhere")
    assert images.rootfs_digest(Path(stored.rootfs)) == images.rootfs_digest(folder)
    assert stored.digest == images.store_record("k3s:v1.25.3")["digest"]  # the manifest's
    assert stored.rootfs.startswith(str(sealer_home))


def test_image_load_errors_are_one_line(tmp_path):
    result = sealer("image", "load", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {tmp_path}/missing: no such folder or archive"
    folder = make_image(tmp_path / "rootfs")
    result = sealer("image", "load", str(folder), "--name", "Bad Name")
    assert result.returncode == 1 and "is not of the form NAME:TAG" in result.stderr
    assert "Traceback" not in result.stderr


def test_images_of_the_older_folder_store_still_work_and_save_moves_them(tmp_path, sealer_home):
    """Before the OCI store, an image was $SEALER_HOME/images/<name>/{rootfs/, image.json}."""
    folder = sealer_home / "images" / "old%2Fk3s:v1"
    make_image(folder / "rootfs", version="v1.25.3", runtime="k3s")
    digest = images.rootfs_digest(folder / "rootfs")
    (folder / "image.json").write_text(json.dumps({"name": "old/k3s:v1", "digest": digest}))
    image = images.resolve("old/k3s:v1", tmp_path)  # no pull: it is in the store
    assert image.digest == digest and image.runtime == "k3s" and not image.platforms
    assert "old/k3s:v1" in sealer("images").stdout
    archive = tmp_path / "old.tar"
    saved = sealer("save", "-o", str(archive), "old/k3s:v1")
    assert saved.returncode == 0, saved.stderr
    moved = images.from_store("old/k3s:v1")  # now an OCI image, same files
    assert moved.platforms == ("linux/amd64",)
    assert images.rootfs_digest(Path(moved.rootfs)) == digest
