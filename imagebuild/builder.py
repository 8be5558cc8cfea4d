"""`sealer build`: run a Kubefile's instructions on a base ClusterImage, with a layer cache.

FROM picks the base rootfs; COPY and RUN each produce a cached layer (imagebuild/layers.py);
ENV, ARG, LABEL and CMD only change what later steps see and what goes into Metadata. The last
layer plus the new Metadata becomes NAME:TAG in the local image store.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster import beneath
from cluster import image as images
from cluster.digests import file_digest, rootfs_digest
from cluster.errors import SealerError
from cluster.model import Image
from imagebuild import kubefile, layers
from imagebuild.isolate import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    SETUP_FAILED,
    TIMED_OUT,
    run_isolated,
)
from imagebuild.kubefile import Instruction, KubefileError


@dataclass
class BuildState:
    layer_key: str = ""
    rootfs: Path | None = None  # None: FROM scratch, nothing yet
    base: str = "scratch"
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    cmd: list[str] | None = None  # None: keep the base's launch commands
    cmd_line: int = 0

    def values(self) -> dict[str, str]:
        return {**self.args, **self.env}


@dataclass
class BuildResult:
    image: Image
    steps: int
    cached: int  # COPY/RUN steps found in the cache
    executed: int  # COPY/RUN steps done now
    unchanged: bool  # the store already held exactly this build


class Builder:
    def __init__(
        self,
        kubefile_path: Path,
        context: Path,
        tag: str,
        build_args: dict[str, str] | None = None,
        no_cache: bool = False,
        out=sys.stdout,
        run_timeout: float = DEFAULT_TIMEOUT,
        memory: int = DEFAULT_MEMORY,
    ):
        self.where = str(kubefile_path)
        self.kubefile_dir = kubefile_path.resolve().parent
        self.context = context.resolve()
        self.tag = tag
        self.build_args = dict(build_args or {})
        self.no_cache = no_cache
        self.out = out
        self.run_timeout, self.memory = run_timeout, memory
        self.cached = self.executed = 0
        self.instructions = kubefile.read(kubefile_path)
        if not images.is_image_ref(tag):
            raise KubefileError(f"-t {tag!r}: an image name is NAME:TAG, e.g. my-app:v1")
        if not self.context.is_dir():
            raise KubefileError(f"{context}: the build context is not a folder")

    def build(self) -> BuildResult:
        with layers.cache_lock(lambda: self._say("Waiting for another sealer build to finish...")):
            return self._build()

    def _build(self) -> BuildResult:
        state = BuildState()
        total = len(self.instructions)
        for number, ins in enumerate(self.instructions, start=1):
            self._say(f"Step {number}/{total} : {ins}")
            getattr(self, f"_{ins.keyword.lower()}")(ins, state)
        unused = set(self.build_args) - set(state.args)
        if unused:
            self._say(f"Warning: --build-arg {', '.join(sorted(unused))} not used by any ARG")
        return self._finish(state, total)

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _error(self, ins: Instruction, message: str) -> KubefileError:
        return KubefileError(f"{self.where}:{ins.line}: {ins.keyword}: {message}")

    # ---- one method per instruction ----

    def _arg(self, ins: Instruction, state: BuildState) -> None:
        name, has_default, default = ins.text.partition("=")
        if name in self.build_args:
            state.args[name] = self.build_args[name]
        elif has_default:
            state.args[name] = kubefile.substitute(default, state.values(), ins, self.where)

    def _from(self, ins: Instruction, state: BuildState) -> None:
        ref = kubefile.substitute(ins.text, state.values(), ins, self.where)
        state.base = ref
        if ref == "scratch":
            state.layer_key, state.rootfs = layers.key("scratch"), None
            return
        try:
            base = images.resolve(ref, self.kubefile_dir)
        except SealerError as e:
            raise self._error(ins, str(e)) from None
        state.layer_key, state.rootfs = layers.key("from", base.digest), Path(base.rootfs)
        self._say(f" ---> {base.name} ({base.runtime} {base.version}, {base.digest[:19]})")

    def _env(self, ins: Instruction, state: BuildState) -> None:
        for name, value in kubefile.pairs(ins, self.where).items():
            state.env[name] = kubefile.substitute(value, state.values(), ins, self.where)

    def _label(self, ins: Instruction, state: BuildState) -> None:
        for name, value in kubefile.pairs(ins, self.where).items():
            state.labels[name] = kubefile.substitute(value, state.values(), ins, self.where)

    def _cmd(self, ins: Instruction, state: BuildState) -> None:
        if state.cmd is not None:
            self._say(
                f"Warning: this CMD replaces the one on line {state.cmd_line} (the last wins)"
            )
        state.cmd, state.cmd_line = kubefile.launch_commands(ins, self.where), ins.line

    def _copy(self, ins: Instruction, state: BuildState) -> None:
        words = shlex.split(kubefile.substitute(ins.text, state.values(), ins, self.where))
        *sources, dest = words
        files = [match for source in sources for match in self._matches(ins, source)]
        target = self._destination(ins, dest)
        into_folder = dest.endswith("/") or len(files) > 1 or any(f.is_dir() for f in files)
        try:
            inputs = [(str(f.relative_to(self.context)), _content_digest(f)) for f in files]
        except SealerError as e:
            raise self._error(ins, str(e)) from None
        layer_key = layers.key(state.layer_key, "COPY", target, into_folder, inputs)

        def copy(rootfs: Path) -> None:
            for f in files:
                try:
                    _copy_into(f, rootfs / target, into_folder, rootfs)
                except SealerError as e:
                    raise self._error(ins, str(e)) from None

        self._layer(ins, state, layer_key, copy)

    def _run(self, ins: Instruction, state: BuildState) -> None:
        env = state.values()
        layer_key = layers.key(state.layer_key, "RUN", ins.text, env)

        def run(rootfs: Path) -> None:
            code = run_isolated(str(rootfs), ins.text, env, self.run_timeout, self.memory)
            if code == SETUP_FAILED:
                raise self._error(ins, "could not set up the isolated environment (see above)")
            if code == TIMED_OUT:
                raise self._error(
                    ins, f"still running after {self.run_timeout:g}s (--run-timeout); stopped"
                )
            if code != 0:
                raise self._error(ins, f"the command exited with {code}; the build stopped here")

        self._layer(ins, state, layer_key, run)

    # ---- layers ----

    def _layer(self, ins: Instruction, state: BuildState, layer_key: str, change) -> None:
        found = None if self.no_cache else layers.cached(layer_key)
        if found is not None:
            self.cached += 1
            self._say(" ---> Using cache")
        else:
            started = time.monotonic()
            found = layers.make(layer_key, state.rootfs, change)
            self.executed += 1
            self._say(f" ---> Done in {time.monotonic() - started:.1f}s")
        state.layer_key, state.rootfs = layer_key, found

    def _matches(self, ins: Instruction, source: str) -> list[Path]:
        if os.path.isabs(source):
            raise self._error(ins, f"{source}: a source is a path inside the build context")
        matches = (
            sorted(self.context.glob(source)) if _is_pattern(source) else [self.context / source]
        )
        found = []
        for match in matches:
            real = match.resolve()
            if real != self.context and self.context not in real.parents:
                raise self._error(
                    ins, f"{source}: leads outside the build context {self.context}; refused"
                )
            if real.exists():
                found.append(match)
        if not found:
            raise self._error(ins, f"{source}: nothing there in the build context {self.context}")
        return found

    def _destination(self, ins: Instruction, dest: str) -> str:
        parts = Path(dest.lstrip("/") or ".").parts
        if ".." in parts:
            raise self._error(ins, f"{dest}: the destination leads outside the rootfs; refused")
        return os.path.join(*parts) if parts else "."

    # ---- the image ----

    def _finish(self, state: BuildState, steps: int) -> BuildResult:
        if state.rootfs is None:
            raise KubefileError(
                f"{self.where}: FROM scratch needs a COPY that brings a Metadata file"
            )
        build_key = layers.key(state.layer_key, state.labels, state.cmd, state.env)
        record = images.store_record(self.tag)
        if record and record.get("build_key") == build_key and not self.no_cache:
            image = images.from_store(self.tag)
            self._say(f"Unchanged: {self.tag} ({image.digest}) already holds this build")
            return BuildResult(image, steps, self.cached, self.executed, unchanged=True)
        staging = Path(layers.cache_root()) / f".image-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(state.rootfs, staging, symlinks=True)
            self._write_metadata(staging, state)
            digest = rootfs_digest(staging)
            image = images.store(
                self.tag,
                staging,
                digest,
                {
                    "build_key": build_key,
                    "base": state.base,
                    "kubefile": str(Path(self.where).resolve()),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                move=True,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._say(f"Successfully built {self.tag} ({image.digest})")
        return BuildResult(image, steps, self.cached, self.executed, unchanged=False)

    def _write_metadata(self, rootfs: Path, state: BuildState) -> None:
        try:
            raw = beneath.read_file(rootfs, "Metadata")
            metadata = json.loads(raw) if raw is not None else {}
        except beneath.LinkRefused as e:
            raise KubefileError(f"{self.where}: the image's {e}") from None
        except ValueError as e:
            raise KubefileError(
                f"{self.where}: the image's Metadata is not valid JSON: {e}"
            ) from None
        if not isinstance(metadata, dict) or not all(
            isinstance(metadata.get(k) or {}, dict) for k in ("labels", "env")
        ):
            raise KubefileError(
                f"{self.where}: the image's Metadata must be a JSON object whose labels and "
                f"env are objects"
            )
        if state.labels:
            metadata["labels"] = {**(metadata.get("labels") or {}), **state.labels}
            if images.RUNTIME_LABEL in state.labels:  # the label sets the runtime
                metadata["ClusterRuntime"] = state.labels[images.RUNTIME_LABEL]
        if state.cmd is not None:
            metadata["cmd"] = state.cmd
        if state.env:
            metadata["env"] = {**(metadata.get("env") or {}), **state.env}
        beneath.write_file(rootfs, "Metadata", (json.dumps(metadata, indent=1) + "\n").encode())
        try:
            images.read_metadata(rootfs, f"{self.where}: the built image")
        except SealerError as e:
            raise KubefileError(str(e)) from None


def _is_pattern(source: str) -> bool:
    return any(c in source for c in "*?[")


def _content_digest(path: Path) -> str:
    """What a COPY source holds: for the cache key."""
    if path.is_dir():
        return rootfs_digest(path)
    return file_digest(path)


def _copy_into(source: Path, target: Path, into_folder: bool, rootfs: Path) -> None:
    """Copy a file, or a folder's contents (as Docker's COPY does), to target in rootfs.

    Never through a symlink: an earlier RUN may have made one (say `etc -> /etc`), and
    following it would write on the build machine. Links in a copied folder are copied as
    links only when they stay inside the rootfs.
    """
    relative = target.relative_to(rootfs)
    if source.is_dir() and not source.is_symlink():
        for folder, dirnames, filenames in os.walk(source):  # does not follow symlinked folders
            here = relative / Path(folder).relative_to(source)
            beneath.make_folders(rootfs, here)
            links = [d for d in dirnames if (Path(folder) / d).is_symlink()]
            for name in filenames + links:
                _copy_file(Path(folder) / name, rootfs, here / name)
        return
    if into_folder or beneath.is_folder(rootfs, relative):
        beneath.make_folders(rootfs, relative)
        relative = relative / source.name
    _copy_file(source, rootfs, relative)


def _copy_file(source: Path, rootfs: Path, relative: Path) -> None:
    """A file as a file, a link as a link (inside the rootfs only); anything else refused."""
    if source.is_symlink():
        beneath.make_link(rootfs, relative, os.readlink(source))
    elif source.is_file():
        beneath.copy_file(source, rootfs, relative)
    else:
        raise SealerError(f"{source.name}: not a file, folder or symlink (a FIFO?); refused")
