"""Small builders shared by the tests: ClusterImages, Clusterfiles and the CLI as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_IMAGES = ROOT / "examples" / "images"


def kubefile(context: Path, text: str) -> Path:
    """Write CONTEXT/Kubefile (the folder made as needed)."""
    context.mkdir(parents=True, exist_ok=True)
    path = context / "Kubefile"
    path.write_text(text)
    return path


def make_image(
    folder: Path, version: str = "v1.25.3", runtime: str | None = "kubernetes", **extra
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"version": version, "arch": "amd64", "variant": "test", "kubeVersion": version}
    if runtime is not None:
        metadata["ClusterRuntime"] = runtime
    metadata.update(extra)
    (folder / "Metadata").write_text(json.dumps(metadata))
    (folder / "bin").mkdir(exist_ok=True)
    (folder / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    os.chmod(folder / "bin" / "tool", 0o755)
    return folder


def cluster_doc(masters, workers=(), image="image", name="test", **spec) -> dict:
    hosts = [{"ips": list(masters), "roles": ["master"]}]
    if workers:
        hosts.append({"ips": list(workers), "roles": ["node"]})
    return {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "ssh": {"user": "root", "pk": "/root/.ssh/id"},
            "hosts": hosts,
            **spec,
        },
    }


def write_clusterfile(path: Path, *docs: dict) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def sealer(
    *args: str,
    env: dict | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run the real `sealer` command as a process."""
    return subprocess.run(
        [sys.executable, "-m", "sealer_cli.main", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
