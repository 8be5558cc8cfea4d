"""sealer's own verbs as front ends over the Clusterfile: `scale-up`, `delete`, `upgrade`.

Each edits the Clusterfile in place (comments and order kept: cluster/clusterfile_edit.py),
shows the diff, then plans and applies it with the usual approval. The edit is kept once the
plan is approved (or has nothing to do); a refused plan, a cancelled approval or an invalid
result puts the file back as it was.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from cluster import clusterfile_edit as edits
from cluster.errors import SealerError
from cluster.model import MASTER, WORKER
from operations.apply import ApplyRequest, ApplyResult, apply, destroy
from operations.events import Listener


@dataclass(frozen=True)
class VerbRequest:
    apply: ApplyRequest  # its clusterfile is the file edited
    masters: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    image: str = ""  # upgrade
    all: bool = False  # delete --all: the whole cluster


def scale_up(request: VerbRequest, listener: Listener) -> ApplyResult:
    if not request.masters and not request.nodes:
        raise SealerError("scale-up: give --masters IPS and/or --nodes IPS")

    def edit(text: str, where: str) -> str:
        return edits.add_hosts(text, where, list(request.masters), list(request.nodes))

    return _edit_then_apply(request, listener, edit)


def delete(request: VerbRequest, listener: Listener) -> ApplyResult:
    if request.all:
        if request.masters or request.nodes:
            raise SealerError("delete: --all deletes every host; give it alone")
        return destroy(request.apply, listener)
    if not request.masters and not request.nodes:
        raise SealerError("delete: give --masters IPS, --nodes IPS, or --all")

    def edit(text: str, where: str) -> str:
        if request.masters:
            text = edits.remove_hosts(text, where, list(request.masters), "--masters", MASTER)
        if request.nodes:
            text = edits.remove_hosts(text, where, list(request.nodes), "--nodes", WORKER)
        return text

    return _edit_then_apply(request, listener, edit)


def upgrade(request: VerbRequest, listener: Listener) -> ApplyResult:
    image = request.image
    if image and Path(image).exists():  # a rootfs folder: as `sealer run` names it
        image = str(Path(image).resolve())

    def edit(text: str, where: str) -> str:
        return edits.set_image(text, where, image)

    return _edit_then_apply(request, listener, edit)


def _edit_then_apply(request: VerbRequest, listener: Listener, edit) -> ApplyResult:
    path = Path(request.apply.clusterfile)
    try:
        old = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SealerError(f"{path}: cannot read the Clusterfile: {e}") from None
    new = edit(old, str(path))
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"{path} (before)", f"{path} (after)"
        )
    )
    listener.note(diff or f"{path}: no change")
    kept = []
    _write(path, new)
    try:
        result = apply(replace(request.apply, approved=lambda: kept.append(True)), listener)
    except BaseException:
        if not kept:
            _write(path, old)
            listener.note(f"{path}: put back as it was")
        raise
    return result


def _write(path: Path, text: str) -> None:
    """Atomically, keeping the file's mode (a Clusterfile may hold passwords)."""
    mode = path.stat().st_mode & 0o7777
    temporary = path.with_name(f".{path.name}.sealer-edit")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
