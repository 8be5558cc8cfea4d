"""Applications inside a ClusterImage, as sealer defines them (pkg/define/application).

An app is a folder of the image, `application/apps/<name>/`, with a type that says how it is
launched: `helm` (a chart), `kube` (YAML manifests applied with kubectl) or `shell` (a script
run with bash). APPCMDS (or an Application's `launch.cmds`) replaces the default command.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

APPS_DIR = "application/apps"
HELM, KUBE, SHELL = "helm", "kube", "shell"
# A folder name and a word of launch commands. Sealer allows any; its docs use `businessApp`.
APP_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
CNI_LABEL_PREFIX = "cluster.alpha.sealer.io/kube-cni-"
CSI_LABEL_PREFIX = "cluster.alpha.sealer.io/kube-csi-"
KUBE_VERSION_LABEL = "app.alpha.sealer.io/supported-kube-version"
APP_IMAGE = "app-installer"  # Metadata `type` of an image that only carries apps
CLUSTER_IMAGE = "kube-installer"


def name_problem(name: str) -> str:
    if APP_NAME.match(name):
        return ""
    return (
        "is not a valid app name (letters, digits, '-', '_' and '.', starting and ending "
        "with a letter or digit, at most 63 characters)"
    )


@dataclass(frozen=True)
class App:
    name: str
    type: str  # HELM, KUBE, SHELL, or "" when the files say nothing (APPCMDS then required)
    files: tuple[str, ...] = ()  # launch files, relative to the app's folder
    env: dict[str, str] = field(default_factory=dict)  # APPENV
    cmds: tuple[str, ...] = ()  # APPCMDS: one command, as argv words

    @property
    def folder(self) -> str:
        return f"{APPS_DIR}/{self.name}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "files": list(self.files),
            "version": "v1",
            "env": dict(self.env),
            "cmds": list(self.cmds),
        }

    @classmethod
    def from_json(cls, data: dict) -> App:
        return cls(
            name=str(data["name"]),
            type=str(data.get("type") or ""),
            files=tuple(str(f) for f in data.get("files") or ()),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            cmds=tuple(str(c) for c in data.get("cmds") or ()),
        )

    def launch_commands(self) -> list[str]:
        """The commands that launch the app, run in its own folder.

        As sealer's GetAppLaunchCmd, except helm: `helm upgrade --install` instead of
        `helm install`, so that launching a changed app again upgrades its release rather than
        failing on a name already in use."""
        if self.cmds:
            return [" ".join(self.cmds)]
        if self.type == KUBE:
            return [" && ".join(f"kubectl apply -f {_quoted(f)}" for f in self.files)]
        if self.type == HELM:
            return [f"helm upgrade --install {self.name} ."]
        if self.type == SHELL:
            return [" && ".join(f"bash {_quoted(f)}" for f in self.files)]
        return []


def _quoted(path: str) -> str:
    return shlex.quote(path.lstrip("/"))


def detect(sources: list[Path]) -> tuple[str, tuple[str, ...]]:
    """The app type and launch files of an APP's sources, by sealer's rules.

    A chart (Chart.yaml, values.yaml and templates/ together, in a folder or given as files)
    is helm; otherwise every file must be YAML (kube) or every file a .sh (shell); a mix or
    another extension is no type, and the app then needs APPCMDS."""
    if _is_chart(sources):
        return HELM, ()
    files: list[tuple[Path, str]] = []  # (file, path relative to the app folder)
    for source in sources:
        if source.is_dir():
            for folder, _dirs, names in sorted(os.walk(source)):
                for name in sorted(names):
                    path = Path(folder) / name
                    files.append((path, str(path.relative_to(source))))
        else:
            files.append((source, source.name))
    kinds = {_kind_of(path.name) for path, _ in files}
    if kinds == {KUBE}:
        return KUBE, tuple(relative for _, relative in files)
    if kinds == {SHELL}:  # sealer launches the first source's scripts only
        first = sources[0]
        return SHELL, tuple(r for p, r in files if p == first or first in p.parents)
    return "", ()


def _kind_of(filename: str) -> str:
    extension = os.path.splitext(filename)[1].lower()
    if extension == ".sh":
        return SHELL
    if extension in (".yaml", ".yml"):
        return KUBE
    return "unknown"


def _is_chart(sources: list[Path]) -> bool:
    def chart_in(folder: Path) -> bool:
        return (
            (folder / "Chart.yaml").is_file()
            and (folder / "values.yaml").is_file()
            and (folder / "templates").exists()
        )

    seen = set()
    for source in sources:
        if source.is_dir():
            if chart_in(source):
                return True
            seen |= {p.name for p in source.iterdir() if p.name in _CHART_PARTS}
        elif source.name in _CHART_PARTS:
            seen.add(source.name)
    return seen == set(_CHART_PARTS)


_CHART_PARTS = ("Chart.yaml", "values.yaml", "templates")


@dataclass(frozen=True)
class Launch:
    """What an image launches: apps by name, or raw commands (sealer's CMDS/CMD)."""

    app_names: tuple[str, ...] = ()
    cmds: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"app_names": list(self.app_names), "cmds": list(self.cmds)}


def kube_version_spec(constraint: str):
    """A KUBEVERSION range in Masterminds' syntax (sealer's: `1.22 - 1.24`, `>=1.22, <1.26`,
    `~1.22`, `^1`, `1.22.x`, `||`), read with npm's rules, which differ only in writing AND as
    a space where Masterminds also takes a comma. ValueError when it is not one."""
    import semantic_version

    return semantic_version.NpmSpec(" ".join(constraint.replace(",", " ").split()))


def kube_version_problem(constraint: str, version: str) -> str:
    """Why a Kubernetes version is outside an app's KUBEVERSION range, or ""."""
    import semantic_version

    try:
        spec = kube_version_spec(constraint)
        wanted = semantic_version.Version.coerce(version.lstrip("v"))
    except ValueError as e:
        return f"KUBEVERSION {constraint!r} cannot be read: {e}"
    if wanted in spec:
        return ""
    return f"the apps support Kubernetes {constraint}, and the cluster runs {version}"
