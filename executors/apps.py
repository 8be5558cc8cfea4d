"""An app's folder as it goes to the bootstrap master: the image's files with the
Application's file overrides applied and its `*.tmpl` files rendered, packed as a tar."""

from __future__ import annotations

import io
import shlex
import shutil
import tarfile
import tempfile
from pathlib import Path

import yaml

from cluster import maps, templates
from cluster.applications import AppLaunch
from cluster.errors import SealerError


def packed(app: AppLaunch, values: dict[str, str]) -> bytes:
    """The app's final folder as an uncompressed tar (owned by root on the host)."""
    with tempfile.TemporaryDirectory(prefix="sealer-app-") as tmp:
        folder = Path(tmp) / app.name
        shutil.copytree(app.folder, folder, symlinks=True)
        for override in app.files:
            _apply_override(folder, override, app.name)
        try:
            templates.render_folder(folder, values)
        except templates.TemplateError as e:
            raise SealerError(f"app {app.name}: template {e}") from None
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for path in sorted(folder.rglob("*")):
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        return out.getvalue()


def install_command(folder: str) -> str:
    """Replace the app's folder on the host with the tar read from stdin."""
    quoted = shlex.quote(folder)
    return f"rm -rf {quoted} && mkdir -p {quoted} && tar -x -C {quoted} --no-same-owner"


def _apply_override(folder: Path, override: dict, app: str) -> None:
    """An Application `files` entry: overwrite the file, or merge YAML into each document."""
    target = folder / override["path"]
    if folder not in target.resolve().parents:
        raise SealerError(f"app {app}: files path {override['path']!r} leaves the app folder")
    if override["strategy"] == "overwrite":
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(override["data"])
        return
    try:
        patch = yaml.safe_load(override["data"]) or {}
        documents = list(yaml.safe_load_all(target.read_text())) if target.is_file() else []
    except yaml.YAMLError as e:
        raise SealerError(f"app {app}: merge into {override['path']}: not YAML: {e}") from None
    if not isinstance(patch, dict):
        raise SealerError(f"app {app}: merge into {override['path']}: the data must be a mapping")
    merged = [maps.merged(doc, patch) for doc in documents if doc is not None]
    target.write_text("\n---\n".join(yaml.safe_dump(d, sort_keys=False) for d in merged))
