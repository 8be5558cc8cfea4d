"""The OCI store's pure parts: references, skopeo's messages, layers written and unpacked."""

from __future__ import annotations

import os
import shutil

import pytest

from cluster.oci import layout as oci
from cluster.oci import refs, skopeo, unpack, write
from cluster.oci.images import arch_of


@pytest.mark.parametrize(
    "text, full",
    [
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("sealerio/kubernetes:v1.22.15", "docker.io/sealerio/kubernetes:v1.22.15"),
        ("docker.io/sealerio/kubernetes:v1.22.15", "docker.io/sealerio/kubernetes:v1.22.15"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2"),
        ("localhost/app:v1", "localhost/app:v1"),
        (
            "registry.cn-qingdao.aliyuncs.com/sealer-io/kubernetes:v1.19.8",
            "registry.cn-qingdao.aliyuncs.com/sealer-io/kubernetes:v1.19.8",
        ),  # fmt: skip
        ("quay.io/a/b@sha256:" + "a" * 64, "quay.io/a/b@sha256:" + "a" * 64),
    ],
)
def test_references_read_as_docker_reads_them(text, full):
    assert str(refs.parse(text)) == full
    assert refs.same(text, full)


@pytest.mark.parametrize(
    "text",
    ["-rf:v1", "Nginx:1", "a b:1", "nginx:1;id", "quay.io/a/b@sha256:short", "", "x" * 300 + ":1"],
)
def test_references_that_could_mislead_a_command_line_are_refused(text):
    with pytest.raises(refs.ReferenceError):
        refs.parse(text)


def test_registries_as_login_takes_them():
    assert refs.registry_name("https://index.docker.io/v1/") == "docker.io"
    assert refs.registry_name("127.0.0.1:5000") == "127.0.0.1:5000"
    with pytest.raises(refs.ReferenceError):
        refs.registry_name("-u root")


def test_skopeo_failures_become_what_the_user_can_act_on():
    fatal = 'time="t" level=fatal msg="{}"'
    assert "sealer login REGISTRY" in skopeo.explain(fatal.format("authentication required"))
    assert (
        skopeo.explain(
            fatal.format("unable to retrieve auth token: invalid username/password: unauthorized")
        )
        == "the registry refused the username or password"
    )
    assert "--tls-verify=false" in skopeo.explain(
        fatal.format("x509: certificate signed by unknown authority")
    )
    digest = "sha256:" + "b" * 64
    assert (
        skopeo.explain(
            fatal.format(
                f"writing blob: Digest did not match, expected {digest}, got sha256:{'c' * 64}"
            )
        )
        == f"{digest} does not match its digest; refused"
    )
    assert "plain HTTP" in skopeo.explain(
        fatal.format("http: server gave HTTP response to HTTPS client")
    )


def test_machines_map_to_platform_architectures():
    assert [arch_of(m) for m in ("x86_64", "aarch64", "armv7l", "s390x")] == [
        "amd64", "arm64", "arm", "s390x",
    ]  # fmt: skip


def test_a_layer_of_changes_unpacks_over_its_base_into_the_same_rootfs(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    (base / "etc/old").mkdir(parents=True)
    (base / "etc/old/a.conf").write_text("a\n")
    (base / "bin").mkdir()
    (base / "bin/tool").write_text("#!/bin/sh\n")
    os.chmod(base / "bin/tool", 0o755)
    (base / "gone.txt").write_text("gone\n")
    shutil.copytree(base, new, symlinks=True)  # as a build's layer starts: times kept
    (new / "gone.txt").unlink()
    (new / "etc/old/a.conf").write_text("changed\n")
    (new / "etc/new.conf").write_text("new\n")
    os.symlink("bin/tool", new / "tool-link")
    store = oci.Layout(tmp_path / "store").create()
    lower = write.write_layer(store, base)
    upper = write.write_layer(store, new, base)
    assert lower and upper
    assert write.write_layer(store, new, new) is None  # nothing changed: no layer
    added, gone = write.changes(new, base)
    assert gone == ["gone.txt"] and "etc/new.conf" in added and "bin/tool" not in added
    out = tmp_path / "out"
    unpack.unpack(
        out, [(store.blob_path(d["digest"]), d["digest"]) for d, _ in (lower, upper)], "t"
    )
    assert not (out / "gone.txt").exists()
    assert (out / "etc/old/a.conf").read_text() == "changed\n"
    assert os.readlink(out / "tool-link") == "bin/tool"
    assert os.access(out / "bin/tool", os.X_OK)


def test_a_layer_whose_bytes_changed_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root/f").write_text("x" * 1000)
    store = oci.Layout(tmp_path / "store").create()
    descriptor, _ = write.write_layer(store, tmp_path / "root")
    blob = store.blob_path(descriptor["digest"])
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(unpack.UnpackError, match="refused|not a readable tar"):
        unpack.unpack(tmp_path / "out", [(blob, descriptor["digest"])], "t")


@pytest.mark.parametrize("python_checks", [True, False], ids=["with-tarfile-filter", "without"])
@pytest.mark.parametrize(
    "entry, problem",
    [
        (("link", "/etc"), "a link to an absolute path"),
        (("link", "../../etc"), "outside the destination"),
        (("sub/link", "../../../etc"), "outside the destination"),
    ],
)
def test_links_out_are_refused_by_sealers_own_checks(
    tmp_path, monkeypatch, python_checks, entry, problem
):
    """Debian 12's Python (3.11.2) has no tarfile filters: the checks must not depend on them."""
    import gzip
    import hashlib
    import io
    import tarfile

    if not python_checks:
        monkeypatch.setattr(unpack, "EXTRACT_OPTIONS", {})
        monkeypatch.setattr(unpack, "FILTER_ERRORS", ())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(entry[0])
        info.type, info.linkname = tarfile.SYMTYPE, entry[1]
        tar.addfile(info)
    blob = tmp_path / "layer"
    blob.write_bytes(gzip.compress(raw.getvalue()))
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    with pytest.raises(unpack.UnpackError, match=problem):
        unpack.unpack(tmp_path / "out", [(blob, digest)], "t")


def test_an_entry_through_a_link_a_lower_layer_planted_is_refused(tmp_path, monkeypatch):
    import gzip
    import hashlib
    import io
    import tarfile

    monkeypatch.setattr(unpack, "EXTRACT_OPTIONS", {})
    monkeypatch.setattr(unpack, "FILTER_ERRORS", ())
    out = tmp_path / "out"
    (out / "bin").mkdir(parents=True)
    os.symlink("bin", out / "dir-link")  # inside the rootfs: allowed as a link
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("dir-link/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    blob = tmp_path / "layer"
    blob.write_bytes(gzip.compress(raw.getvalue()))
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    with pytest.raises(unpack.UnpackError, match="reaches through dir-link"):
        unpack.apply_layer(out, blob, digest, "t")
    assert not (out / "bin/x").exists()
