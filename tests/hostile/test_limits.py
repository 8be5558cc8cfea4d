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


# ---- issue 33: inputs that used to end in an internal error, each now a clear line ----


def test_a_recursive_yaml_alias_and_deep_nesting_are_refused_at_their_place(tmp_path, image):
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: x}\n"
        "spec:\n  image: &a [*a]\n  hosts: []\n"
    )
    line = one_line(sealer("validate", "-f", str(recursive)))
    assert line == f"{recursive}:5:10: a YAML alias refers to a node that contains it, refused"
    deep = tmp_path / "deep.yaml"
    deep.write_text("apiVersion: sealer.io/v2\nkind: Cluster\nspec:\n  x: " + "[" * 150 + "]" * 150)
    assert "YAML nested more than 100 levels deep, refused" in one_line(
        sealer("validate", "-f", str(deep))
    )


def test_a_hostile_metadata_is_refused_before_it_costs_memory_or_the_stack(tmp_path):
    folder = make_image(tmp_path / "image")
    (folder / "Metadata").write_text('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    line = one_line(sealer("image", "load", str(folder), "--name", "deep:v1"))
    assert line.endswith("Metadata is nested too deep to read; refused")
    with open(folder / "Metadata", "wb") as f:  # 300 MiB of spaces, sparse-free but quick
        f.truncate(300 << 20)
    line = one_line(sealer("image", "load", str(folder), "--name", "big:v1"))
    assert "Metadata: 314,572,800 bytes, more than 1,048,576; refused" in line


def test_a_path_thousands_of_levels_deep_in_an_image_archive_is_refused(tmp_path):
    archive = tmp_path / "deep.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("Metadata", b'{"version": "v1.25.3"}'), ("d/" * 2000 + "f", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    line = one_line(sealer("image", "load", str(archive), "--name", "deep:v1"))
    assert line == f"Error: {archive}: a path in the archive is 2001 levels deep; refused"


def test_a_state_with_a_hostile_address_runtime_or_depth_is_refused_when_read(tmp_path, image):
    import json

    path = write_clusterfile(tmp_path / "Clusterfile", cluster_doc(["127.0.2.1"], image=str(image)))
    base = {"format_version": 1, "lineage": "l", "serial": 1, "cluster": "test", "hosts": {}}
    for hostile, said in (
        ({"hosts": {"127.0.1.9;id": {"roles": ["master"]}}}, "hosts['127.0.1.9;id']: not an IP"),
        ({"image": {"runtime": "k3s; rm -rf /"}}, "image.runtime 'k3s; rm -rf /' is not one of"),
    ):
        state = tmp_path / "state.json"
        state.write_text(json.dumps({**base, **hostile}))
        line = one_line(sealer("plan", "-f", str(path), "--state", str(state), "--refresh=false"))
        assert said in line and "not a valid sealer state" in line
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(base)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    line = one_line(sealer("show", "--state", str(deep)))
    assert "the state is not valid JSON (nested too deep to read)" in line
