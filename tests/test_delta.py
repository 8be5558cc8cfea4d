"""The delta of a rootfs: only what changed travels, removals and checks included."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from cluster.errors import SealerError
from executors import delta
from executors.distribute import root_owned


@pytest.fixture
def rootfs(tmp_path, monkeypatch):
    monkeypatch.setenv("SEALER_HOME", str(tmp_path / "home"))
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "registry").mkdir()
    (root / "bin" / "tool").write_bytes(b"v1")
    (root / "bin" / "same").write_bytes(b"same")
    (root / "etc.tmpl").write_text("x={{ .X }}")
    (root / "registry" / "blob").write_bytes(b"not shipped")
    os.symlink("tool", root / "bin" / "link")
    return root


def _names(content: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()
        }


def test_manifest_lists_files_and_links_but_not_the_skipped_top_level(rootfs):
    entries = delta.manifest(str(rootfs), "sha256:one", frozenset({"registry"}))
    assert set(entries) == {"bin/tool", "bin/same", "bin/link", "etc.tmpl"}
    assert entries["bin/link"] == "link:tool"
    assert entries["bin/tool"].endswith(":644")


def test_only_changed_files_templates_and_removals_travel_with_their_checks(rootfs):
    old = delta.manifest(str(rootfs), "sha256:one", frozenset({"registry"}))
    old["bin/gone"] = "0" * 64 + ":644"
    (rootfs / "bin" / "tool").write_bytes(b"v2")
    new = delta.manifest(str(rootfs), "sha256:two", frozenset({"registry"}))
    content, count = delta.delta_tar(str(rootfs), new, old, {"etc/cfg": b"rendered"}, root_owned)
    names = _names(content)
    assert set(names) == {"bin/tool", "etc.tmpl", "etc/cfg", delta.REMOVED, delta.CHECKS}
    assert count == 2 and names["bin/tool"] == b"v2"
    assert names[delta.REMOVED] == b"bin/gone"
    assert sorted(line.split("  ")[1] for line in names[delta.CHECKS].decode().splitlines()) == [
        "./bin/tool",
        "./etc.tmpl",
    ]


def test_a_hostile_host_manifest_cannot_name_paths_outside_the_rootfs(rootfs):
    new = delta.manifest(str(rootfs), "sha256:one", frozenset({"registry"}))
    old = {**new, "../../etc/passwd": "x", "/etc/shadow": "y"}
    content, _ = delta.delta_tar(str(rootfs), new, old, {}, root_owned)
    assert _names(content)[delta.REMOVED] == b""
    assert delta.read_host_manifest("[1, 2]") is None
    assert delta.read_host_manifest("not json") is None
    with pytest.raises(SealerError, match="not a plain relative path"):
        delta.delta_tar(str(rootfs), {"../x": "a:644"}, {}, {}, root_owned)
