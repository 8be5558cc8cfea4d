"""Issue 13, class 5: documented limits, each refused with a one-line error naming it."""

from __future__ import annotations

import io
import os
import tarfile
import time

from tests.helpers import cluster_doc, make_image, sealer, write_clusterfile
from tests.test_build import IMAGES, build, kubefile


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_ranges_that_expand_past_the_host_limit_are_refused_at_once(tmp_path, image):
    ranges = [f"10.{n}.0.0-10.{n}.255.255" for n in range(16)]  # 1,048,576 addresses
    doc = cluster_doc(["127.0.2.1"], ranges, image=str(image))
    path = write_clusterfile(tmp_path / "Clusterfile", doc)
    started = time.monotonic()
    result = sealer("validate", "-f", str(path))
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert "the cluster would have more than 20000 hosts" in result.stderr


def test_a_flood_of_yaml_documents_is_refused(tmp_path, image):
    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], image=str(image)))
    path.write_text(path.read_text() + "---\n" * 5000)
    assert "more than 1000 YAML documents, refused" in one_line(sealer("validate", "-f", str(path)))


def test_an_archive_bomb_is_refused_before_it_is_unpacked(tmp_path):
    rootfs = make_image(tmp_path / "image")
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(rootfs, arcname="rootfs")
        info = tarfile.TarInfo("rootfs/zeros")
        info.size = 300 * 2**20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert archive.stat().st_size < 2 * 2**20
    line = one_line(sealer("image", "load", str(archive), "--name", "bomb:v1"))
    assert "times its size (limit 100x)" in line
    assert not list((tmp_path / "sealer-home").rglob("zeros"))  # nothing was unpacked


def test_a_fifo_in_an_image_folder_is_refused_not_waited_on(tmp_path):
    rootfs = make_image(tmp_path / "image")
    os.mkfifo(rootfs / "bin" / "pipe")
    path = write_clusterfile(
        tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], image=str(rootfs))
    )
    for args in (("validate", "-f", str(path)), ("image", "load", str(rootfs), "--name", "f:v1")):
        assert "bin/pipe: not a regular file" in one_line(sealer(*args))


def test_a_run_step_has_a_time_and_a_memory_limit(tmp_path):
    slow = tmp_path / "slow"
    kubefile(slow, f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN sleep 60\n")
    started = time.monotonic()
    result = build(slow, "slow:v1", "--run-timeout", "2s")
    assert time.monotonic() - started < 30
    assert result.returncode == 1 and "still running after 2s (--run-timeout)" in result.stderr
    hungry = tmp_path / "hungry"
    kubefile(hungry, f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN python3 -c 'x = bytearray(600 << 20)'\n")
    result = build(hungry, "hungry:v1", "--memory", "256m")
    assert result.returncode == 1 and "the command exited with 1" in result.stderr
    assert build(hungry, "hungry:v1", "--memory", "2g").returncode == 0  # enough memory: fine
