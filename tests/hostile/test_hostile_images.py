"""Hostile or broken images from a registry: each is one clear line naming the reference and the
digest, nothing half written stays in the store or the rootfs cache, and the next pull works."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from cluster import image as images
from tests.helpers import SANDBOX_IMAGES, sealer
from tests.image_registry import secure_registry
from tests.sealer_go_image import folder_entries, image_extension, write_image, write_layers
from tests.test_image_transport import login, skopeo

pytestmark = pytest.mark.skipif(
    not (SANDBOX_IMAGES / ".vendor/registry/registry").exists(), reason="scripts/setup not run"
)

BASE = SANDBOX_IMAGES / "k3s-v1.25.3"
LABELS = {"cluster.alpha.sealer.io/cluster-runtime-type": "k3s"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with secure_registry(tmp_path_factory.mktemp("hostile-registry")) as reg:
        yield reg


@pytest.fixture
def logged_in(registry):
    registry.trust_in(Path(os.environ["SEALER_HOME"]))
    login(registry)
    return registry


def push(tmp_path: Path, reg, name: str, top: list, extension=None) -> str:
    layout = tmp_path / name.replace("/", "-").replace(":", "-")
    digest = write_image(
        layout, "v1", write_layers([folder_entries(BASE), top]),
        image_extension(["true"]) if extension is None else extension, LABELS,
    )  # fmt: skip
    skopeo("copy", "--quiet", f"--dest-cert-dir={reg.cert_dir()}", "--dest-creds",
           f"{reg.user}:{reg.password}", f"oci:{layout}:v1", f"docker://{reg.address}/{name}")  # fmt: skip
    return digest


def _entry(name: str, kind=tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


def unpack_cache() -> list[str]:
    folder = Path(os.environ["SEALER_HOME"]) / "cache" / "unpacked"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize(
    "top, problem",
    [
        ([("../escape", b"x")], "unsafe path in a layer: '../escape'"),
        ([("/etc/absolute", b"x")], "unsafe path in a layer: '/etc/absolute'"),
        ([_entry("dev/sda", tarfile.BLKTYPE)], "device file in a layer: 'dev/sda'"),
        ([_entry("dev/fifo", tarfile.FIFOTYPE)], "device file in a layer: 'dev/fifo'"),
        (
            [_entry("out", tarfile.SYMTYPE, "bin"), ("out/.wh.k3s", b"")],
            "a whiteout reaches through out",
        ),
        (
            [_entry("link", tarfile.SYMTYPE, "../../../../etc"), ("link/x", b"x")],
            "outside the destination",
        ),
        ([_entry("abs", tarfile.SYMTYPE, "/etc")], "a link to an absolute path"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "block-device",
        "fifo",
        "whiteout-through-link",
        "link-out",
        "abs-link",
    ],
)
def test_unsafe_layers_are_refused_before_a_byte_lands_outside(tmp_path, logged_in, top, problem):
    name = f"hostile/layer-{abs(hash(problem)) % 10**6}:v1"
    digest = push(tmp_path, logged_in, name, top)
    ref = f"{logged_in.address}/{name}"
    assert sealer("pull", ref).returncode == 0  # what the registry serves is stored as is
    result = sealer("inspect", ref)  # the first use unpacks it
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and problem in line, line
    assert ref in line and digest[:19] in line, line
    assert unpack_cache() == []  # no half-unpacked rootfs kept
    assert not Path("/escape").exists() and not Path("/etc/absolute").exists()


def test_an_extension_that_is_not_json_is_one_line_at_pull(tmp_path, logged_in):
    name = "hostile/annotation:v1"
    digest = push(tmp_path, logged_in, name, [("etc/x", b"x")], extension="{not json")
    ref = f"{logged_in.address}/{name}"
    result = sealer("pull", ref)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        f"Error: pull {ref}: {digest[:19]}: annotation sealer.image.extension is not valid JSON"
    ), result.stderr
    assert sealer("images").stdout.startswith("No images")  # nothing named


def _registry_blob(reg, digest: str) -> Path:
    hexa = digest.split(":")[1]
    return reg.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"


def test_a_corrupt_or_missing_layer_fails_the_pull_and_the_next_pull_works(tmp_path, logged_in):
    name = "hostile/corrupt:v1"
    digest = push(tmp_path, logged_in, name, [("etc/corrupt-me", b"original content\n" * 100)])
    ref = f"{logged_in.address}/{name}"
    layout = tmp_path / name.replace("/", "-").replace(":", "-")
    manifest = json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_text())
    layer = manifest["layers"][1]["digest"]
    blob = _registry_blob(logged_in, layer)
    original = blob.read_bytes()
    blob.write_bytes(original[:-10] + b"0123456789")  # same size, other bytes
    corrupt = sealer("pull", ref)
    assert corrupt.returncode == 1, corrupt.stdout
    assert corrupt.stderr.strip() == (
        f"Error: pull {ref}: {layer} does not match its digest; refused"
    ), corrupt.stderr
    store = Path(os.environ["SEALER_HOME"]) / "oci"
    assert not (store / "blobs/sha256" / layer.split(":")[1]).exists()
    assert sealer("images").stdout.startswith("No images")
    blob.unlink()
    missing = sealer("pull", ref)
    assert missing.returncode == 1
    assert layer in missing.stderr and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    blob.write_bytes(original)
    again = sealer("pull", ref)
    assert again.returncode == 0, again.stderr
    assert images.from_store(ref).digest == digest


def test_a_wrong_password_then_the_right_one(tmp_path, registry):
    registry.trust_in(Path(os.environ["SEALER_HOME"]))
    wrong = sealer("login", registry.address, "-u", registry.user, "-p", "nope")
    assert wrong.returncode == 1
    lines = wrong.stderr.strip().splitlines()
    assert (
        lines[-1]
        == f"Error: login {registry.address}: the registry refused the username or password"
    )
    assert "prefer --password-stdin" in lines[0]
    assert (
        not (Path(os.environ["SEALER_HOME"]) / "auth.json").exists()
        or "nope" not in (Path(os.environ["SEALER_HOME"]) / "auth.json").read_text()
    )


def test_an_oversized_manifest_is_refused(tmp_path):
    """(Distribution takes no such manifest: an archive brings it.)"""
    extension = image_extension(["true"])
    extension["labels"] = {"padding": "x" * (5 * 2**20)}
    layout = tmp_path / "layout"
    digest = write_image(
        layout, "huge:v1", write_layers([[("Metadata", b"{}")]]), extension, LABELS
    )
    archive = tmp_path / "huge.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in ("oci-layout", "index.json", "blobs"):
            tar.add(layout / entry, arcname=entry)
    result = sealer("load", "-i", str(archive))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: load {archive}: huge:v1: {digest[:19]} is {(layout / 'blobs/sha256' / digest[7:]).stat().st_size}"
        f" bytes, more than the limit of {4 * 2**20}"
    ), result.stderr
    assert sealer("images").stdout.startswith("No images")


def test_a_saved_archive_with_a_link_or_a_bad_blob_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                           ("index.json", b'{"schemaVersion": 2, "manifests": []}')):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            import io

            tar.addfile(info, io.BytesIO(data))
        tar.addfile(_entry("blobs", tarfile.SYMTYPE, "/etc"))
    result = sealer("load", "-i", str(archive))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: load {archive}: unexpected entry 'blobs'; refused"
