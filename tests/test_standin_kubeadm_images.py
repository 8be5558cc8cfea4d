"""The images kubeadm's stand-in names and pulls are the ones build.py makes and collects:
one table (src/sandbox_standin/kubeadm_images.py). Pure."""

from __future__ import annotations

import importlib.util
import sys

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "examples" / "images" / "src"))
from sandbox_standin.kubeadm import control_plane_images  # noqa: E402

spec = importlib.util.spec_from_file_location("image_build", ROOT / "examples/images/build.py")
image_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(image_build)


def test_kubeadm_names_its_images_under_the_configured_repository():
    images = control_plane_images("v1.26.1", {"imageRepository": "sea.hub:5000/"})
    assert images == {
        "etcd": "sea.hub:5000/etcd:3.5.6-0",
        "kube-apiserver": "sea.hub:5000/kube-apiserver:v1.26.1",
        "pause": "sea.hub:5000/pause:3.9",
    }
    assert control_plane_images("v1.25.3", {})["pause"] == "registry.k8s.io/pause:3.8"


def test_every_image_kubeadm_pulls_is_one_the_image_build_collects():
    for version in image_build.VERSIONS:
        collected = set(image_build.control_plane_sources(version))
        pulled = control_plane_images(version, {}).values()
        assert set(pulled) <= collected, version
