"""The stand-in kubelet's image names, as the CRI resolves them before containerd pulls
(src/sandbox_standin/containerd.py). Pure."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "examples" / "images" / "src"))
from sandbox_standin.containerd import normalize  # noqa: E402


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("team/web:v1", "docker.io/team/web:v1"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("sea.hub:5000/etcd:3.5.6-0", "sea.hub:5000/etcd:3.5.6-0"),
        ("localhost/app", "localhost/app:latest"),
        (
            "127.0.0.1:5000/team/web@sha256:" + "a" * 64,
            "127.0.0.1:5000/team/web@sha256:" + "a" * 64,
        ),
    ],
)
def test_short_names_are_docker_hubs_and_untagged_ones_latest(image, ref):
    assert normalize(image) == ref
