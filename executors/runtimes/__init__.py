"""One runtime per distribution: each turns a plan action into that distribution's commands."""

from __future__ import annotations

from cluster.model import DrainPolicy
from executors.runtimes.base import DEFAULT_DRAIN, ImageInputs, Runtime


def runtime_for(
    name: str, drain: DrainPolicy = DEFAULT_DRAIN, image: ImageInputs | None = None
) -> Runtime:
    """The runtime `choose_runtime()` named (kubernetes, k3s or k0s), for one run: its drain
    policy and what it reads from the image, given now."""
    from executors.runtimes.k0s import K0s
    from executors.runtimes.k3s import K3s
    from executors.runtimes.kubernetes import Kubeadm

    return {"kubernetes": Kubeadm, "k3s": K3s, "k0s": K0s}[name](drain, image)
