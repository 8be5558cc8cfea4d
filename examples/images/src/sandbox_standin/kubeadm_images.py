"""kubeadm's image tags for each minor (cmd/kubeadm/app/constants): the one table both the
kubeadm stand-in (which names and pulls them) and build.py (which makes and collects them)
read."""

import re

IMAGE_TAGS = {
    25: {"pause": "3.8", "etcd": "3.5.4-0", "coredns/coredns": "v1.9.3"},
    26: {"pause": "3.9", "etcd": "3.5.6-0", "coredns/coredns": "v1.9.3"},
    27: {"pause": "3.9", "etcd": "3.5.7-0", "coredns/coredns": "v1.10.1"},
}
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


def minor_of(version):
    m = re.match(r"v?1\.(\d+)\.\d+", str(version))
    return int(m[1]) if m else None


def image_tags(version):
    """{NAME: TAG} of kubeadm's images for this version (a minor kubeadm's table here does not
    know: the newest one's, as a newer kubeadm would mostly keep them)."""
    known = IMAGE_TAGS.get(minor_of(version)) or IMAGE_TAGS[max(IMAGE_TAGS)]
    return {**{component: version for component in KUBE_COMPONENTS}, **known}
