"""One runtime per distribution: each turns a plan action into that distribution's commands."""

from __future__ import annotations

from executors.runtimes.base import Runtime


def runtime_for(name: str) -> Runtime:
    """The runtime `choose_runtime()` named (kubernetes, k3s or k0s)."""
    from executors.runtimes.k0s import K0s
    from executors.runtimes.k3s import K3s
    from executors.runtimes.kubernetes import Kubeadm

    return {"kubernetes": Kubeadm, "k3s": K3s, "k0s": K0s}[name]()
