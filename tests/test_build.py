"""`sealer build` from a Kubefile: instructions, the layer cache, isolation, errors, the store."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tarfile
from pathlib import Path

import pytest

from cluster import image as images
from tests.helpers import ROOT, SANDBOX_IMAGES, kubefile, sealer

IMAGES = SANDBOX_IMAGES


def build(context: Path, tag: str = "app:v1", *extra: str):
    return sealer("build", "-t", tag, *extra, str(context), timeout=120)


def built(tag: str = "app:v1") -> Path:
    return Path(images.from_store(tag).rootfs)


@pytest.mark.parametrize("runtime", ["kubernetes", "k3s", "k0s"])
def test_build_from_each_sandbox_image(tmp_path, runtime):
    context = tmp_path / "ctx"
    (context / "app").mkdir(parents=True)
    (context / "app" / "dashboard.yaml").write_text("kind: Deployment\nspec:\n  replicas: 1\n")
    kubefile(
        context,
        f"""# the issue's example, on the {runtime} sandbox image
FROM {IMAGES / f"{runtime}-v1.25.3"}
ARG REPLICAS=2
COPY app/dashboard.yaml manifests/
RUN sed -i "s/replicas: 1/replicas: $REPLICAS/" manifests/dashboard.yaml
LABEL cluster.alpha.sealer.io/cluster-runtime-type={runtime} owner=platform
CMD kubectl apply -f manifests/dashboard.yaml
""",
    )
    result = build(context)
    assert result.returncode == 0, result.stderr
    assert "Successfully built app:v1" in result.stdout
    rootfs = built()
    assert "replicas: 2" in (rootfs / "manifests" / "dashboard.yaml").read_text()
    assert (rootfs / "bin").is_dir() and (rootfs / "scripts" / "init.sh").is_file()
    image = images.from_store("app:v1")
    assert image.runtime == runtime and image.version == "v1.25.3"
    assert image.launch_cmds == ("kubectl apply -f manifests/dashboard.yaml",)
    # the digest is the OCI manifest's, as the store's index.json names it
    index = json.loads((images.sealer_home() / "oci" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [image.digest]
    inspect = json.loads(sealer("image", "inspect", "app:v1", "--json").stdout)
    assert inspect["labels"]["owner"] == "platform" and inspect["digest"] == image.digest
    assert inspect["launch_commands"] == ["kubectl apply -f manifests/dashboard.yaml"]


def _layered(context: Path, payload: str) -> None:
    (context / "payload.txt").parent.mkdir(parents=True, exist_ok=True)
    (context / "payload.txt").write_text(payload)
    kubefile(
        context,
        f"""FROM {IMAGES / "k3s-v1.25.3"}
RUN date +%s%N > first-run
COPY payload.txt etc/
RUN date +%s%N > second-run
""",
    )


def test_unchanged_kubefile_rebuilds_nothing_and_a_change_rebuilds_from_there(tmp_path):
    context = tmp_path / "ctx"
    _layered(context, "one")
    assert build(context).returncode == 0
    first, digest = built(), images.from_store("app:v1").digest
    stamps = {n: (first / n).read_text() for n in ("first-run", "second-run")}

    again = build(context)
    assert again.returncode == 0 and again.stdout.count("---> Using cache") == 3
    assert "0 layer(s) built, 3 from the cache" in again.stdout and "Unchanged" in again.stdout
    assert images.from_store("app:v1").digest == digest  # no RUN ran a second time

    _layered(context, "two")  # the COPY's source changed: the COPY and what follows rebuild
    changed = build(context)
    assert "1 layer(s) built" not in changed.stdout and "2 layer(s) built, 1 from" in changed.stdout
    rootfs = built()
    assert (rootfs / "first-run").read_text() == stamps["first-run"]
    assert (rootfs / "second-run").read_text() != stamps["second-run"]
    assert (rootfs / "etc" / "payload.txt").read_text() == "two"

    forced = build(context, "app:v1", "--no-cache")
    assert "3 layer(s) built, 0 from the cache" in forced.stdout
    assert (built() / "first-run").read_text() != stamps["first-run"]


def test_copy_that_leaves_the_context_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("outside")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "link").symlink_to(tmp_path / "secret.txt")
    base = f"FROM {IMAGES / 'kubernetes-v1.25.3'}\n"
    for line in ("COPY ../secret.txt etc/", "COPY link etc/", "COPY /etc/passwd etc/"):
        kubefile(context, base + "\n" + line + "\n")
        result = build(context)
        assert result.returncode == 1, line
        assert f"{context / 'Kubefile'}:3: COPY:" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (context / "ok.txt").write_text("x")
    kubefile(context, base + "COPY ok.txt ../../etc/\n")
    escape = build(context)
    assert escape.returncode == 1 and "leads outside the rootfs" in escape.stderr
    assert images.store_record("app:v1") is None


def test_failing_run_fails_the_build_with_its_line(tmp_path):
    context = tmp_path / "ctx"
    kubefile(
        context,
        f"FROM {IMAGES / 'k0s-v1.25.3'}\nENV A=1\n\nRUN echo about to fail; exit 7\nCMD x\n",
    )
    result = build(context)
    assert result.returncode == 1
    assert f"{context / 'Kubefile'}:4: RUN: the command exited with 7" in result.stderr
    assert "about to fail" in result.stdout  # the command's own output is shown
    assert images.store_record("app:v1") is None  # no image, no half layer
    assert not list(images.sealer_home().glob("cache/layers/.staging-*"))


def test_run_is_isolated(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]  # the kernel completes a connection to it: no accept()
    marker = tmp_path / "host-file"
    context = tmp_path / "ctx"
    kubefile(
        context,
        f"""FROM {IMAGES / "kubernetes-v1.25.3"}
RUN (python3 -c 'import socket; socket.create_connection(("127.0.0.1", {port}), 2)' \\
      && echo reached > network) || echo none > network
RUN (touch /usr/sealer-build-probe && echo yes || echo no) > wrote-usr 2>/dev/null
RUN (test -e {marker} && echo yes || echo no) > sees-host; hostname > hostname; echo x > /tmp/t
RUN (ls {ROOT} >/dev/null 2>&1 && echo yes || echo no) > sees-project; env | sort > env
RUN wc -c < /etc/shadow > shadow-bytes; (mount -t tmpfs t /tmp && echo yes || echo no) > mounts
""",
    )
    marker.write_text("on the build machine")
    os.environ["SEALER_TEST_SECRET_ENV"] = "leak"
    try:
        result = build(context)
    finally:
        del os.environ["SEALER_TEST_SECRET_ENV"]
        listener.close()
    assert result.returncode == 0, result.stderr
    rootfs = built()
    assert (rootfs / "network").read_text().strip() == "none"
    assert (rootfs / "wrote-usr").read_text().strip() == "no"
    assert not Path("/usr/sealer-build-probe").exists()
    assert (rootfs / "sees-host").read_text().strip() == "no"
    assert (rootfs / "sees-project").read_text().strip() == "no"
    assert (rootfs / "hostname").read_text().strip() == "sealer-build"
    assert "SEALER_TEST_SECRET_ENV" not in (rootfs / "env").read_text()
    assert (rootfs / "shadow-bytes").read_text().strip() == "0"  # masked
    assert (rootfs / "mounts").read_text().strip() == "no"  # no capabilities


def test_save_and_load_round_trip_keeps_the_digest(tmp_path):
    context = tmp_path / "ctx"
    _layered(context, "payload")
    assert build(context, "team/app:v3").returncode == 0
    digest = images.from_store("team/app:v3").digest
    archive = tmp_path / "app.tar"
    assert sealer("image", "save", "team/app:v3", "-o", str(archive)).returncode == 0
    with tarfile.open(archive) as t:  # an oci-archive: an OCI layout in a tar
        assert {"oci-layout", "index.json"} <= set(t.getnames())
    assert sealer("image", "rm", "team/app:v3").returncode == 0
    assert images.store_record("team/app:v3") is None
    loaded = sealer("image", "load", str(archive))  # the archive carries its name
    assert loaded.returncode == 0, loaded.stderr
    assert images.from_store("team/app:v3").digest == digest
    assert digest in loaded.stdout
    missing = sealer("image", "rm", "team/app:v3", "nothere:v1")
    assert missing.returncode == 1 and "'nothere:v1' is not in the local store" in missing.stderr


def test_label_sets_the_runtime_and_from_the_store_works(tmp_path):
    assert (
        sealer("image", "load", str(IMAGES / "k3s-v1.26.1"), "--name", "k3s:v1.26.1").returncode
        == 0
    )
    context = tmp_path / "ctx"
    kubefile(
        context,
        "ARG BASE=k3s:v1.26.1\nFROM ${BASE}\nLABEL cluster.alpha.sealer.io/cluster-runtime-type=k0s\n",
    )
    assert build(context).returncode == 0
    assert images.from_store("app:v1").runtime == "k0s"


@pytest.mark.parametrize(
    "text, message",
    [
        ("COPY a b\n", "1: COPY before FROM; only ARG may come before FROM"),
        ("FROM x:v1\nWORKDIR /x\n", "2: unknown instruction 'WORKDIR'"),
        ("# nothing\n", "no FROM instruction"),
        ("FROM x:v1\nFROM y:v1\n", "2: a second FROM (the first is on line 1)"),
        ("FROM x:v1\nENV =1\n", "2: ENV: expected K=V"),
        ("FROM x:v1\nCOPY onlyone\n", "2: COPY: needs a source and a destination"),
        ('FROM x:v1\nCMD ["a", 1]\n', "2: CMD: the list must hold non-empty strings"),
        ("FROM ${NOPE}\n", "1: FROM: $NOPE is not set"),
        ("FROM nothere:v9\n", "1: FROM: image 'nothere:v9' is not in the local store"),
        ("FROM x:v1\nRUN a \\\n  b\nLABEL\n", "4: LABEL needs an argument"),
    ],
)
def test_kubefile_errors_name_the_line(tmp_path, text, message):
    context = tmp_path / "ctx"
    path = kubefile(context, text)
    result = build(context)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_unused_build_arg_warns_and_bad_tag_is_refused(tmp_path):
    context = tmp_path / "ctx"
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nARG USED\n")
    result = build(context, "app:v1", "--build-arg", "USED=1", "--build-arg", "OTHER=2")
    assert result.returncode == 0 and "--build-arg OTHER not used" in result.stdout
    bad = build(context, "NoTag")
    assert bad.returncode == 1 and "-t 'NoTag': an image name is NAME:TAG" in bad.stderr


def test_copy_never_writes_through_a_symlink_out_of_the_rootfs(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    context = tmp_path / "ctx"
    (context / "conf").mkdir(parents=True)
    (context / "conf" / "owned.txt").write_text("payload")
    kubefile(
        context,
        f"""FROM {IMAGES / "k3s-v1.25.3"}
RUN ln -s {outside} etc-link
COPY conf etc-link/
""",
    )
    result = build(context)
    assert result.returncode == 1
    assert f"{context / 'Kubefile'}:3: COPY: etc-link goes through a symlink" in result.stderr
    assert list(outside.iterdir()) == []  # nothing was written on the build machine


def test_a_second_build_waits_for_the_first_one(tmp_path):
    import subprocess
    import sys
    import time

    first, second = tmp_path / "first", tmp_path / "second"
    kubefile(first, f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN while [ ! -f go ]; do sleep 0.05; done\n")
    kubefile(second, f"FROM {IMAGES / 'k3s-v1.25.3'}\nRUN echo second > second\n")

    def start(context: Path, tag: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "sealer_cli.main", "build", "-t", tag, str(context)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    a = start(first, "first:v1")
    layers = images.sealer_home() / "cache" / "layers"
    deadline = time.monotonic() + 60
    while not list(layers.glob(".staging-*/rootfs")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (staging,) = layers.glob(".staging-*/rootfs")  # the first build is in its RUN
    b = start(second, "second:v1")
    assert b.stdout.readline().strip() == "Waiting for another sealer build to finish..."
    (staging / "go").touch()  # let the first RUN end
    assert a.wait(timeout=60) == 0 and b.wait(timeout=60) == 0, a.stderr.read() + b.stderr.read()
    assert (built("second:v1") / "second").read_text() == "second\n"
    assert (built("first:v1") / "go").exists()


def test_the_rootfs_a_build_keeps_is_what_its_layers_unpack_to(tmp_path):
    """A build leaves its rootfs in the unpacked cache (apply unpacks nothing): it must be what
    a puller gets from the layers."""
    context = tmp_path / "ctx"
    kubefile(
        context,
        f"FROM {IMAGES / 'k3s-v1.25.3'}\nCOPY payload.txt etc/\nRUN chmod 0775 etc/payload.txt\n",
    )
    (context / "payload.txt").write_text("payload\n")
    assert build(context, "kept:v1").returncode == 0
    kept = Path(images.from_store("kept:v1").rootfs)
    digest = images.rootfs_digest(kept)
    assert oct((kept / "etc/payload.txt").stat().st_mode & 0o777) == "0o755"  # as unpacked
    shutil.rmtree(images.sealer_home() / "cache" / "unpacked")
    unpacked = Path(images.from_store("kept:v1").rootfs)
    assert images.rootfs_digest(unpacked) == digest
    assert oct((unpacked / "etc/payload.txt").stat().st_mode & 0o777) == "0o755"
