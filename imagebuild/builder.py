"""`sealer build`: run a Kubefile's instructions on a base ClusterImage, with a layer cache.

FROM picks the base rootfs; COPY, ADD, RUN and APP (CNI, CSI) each produce a cached layer
(imagebuild/layers.py); the other instructions only change what later steps see and what goes
into Metadata (labels, env, the apps and what the image launches). The last layer plus the new
Metadata becomes NAME:TAG in the local image store. FROM scratch without a Metadata file makes
an application image: apps and no Kubernetes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cluster import apps, beneath
from cluster import image as images
from cluster.apps import App, Launch
from cluster.digests import file_digest, rootfs_digest
from cluster.errors import SealerError
from cluster.model import Image
from cluster.oci import images as oci_images
from cluster.oci import store as oci_store
from imagebuild import collect, containers, fetch, kubefile, layers
from imagebuild.isolate import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    SETUP_FAILED,
    TIMED_OUT,
    check_support,
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
    cmd: list[str] = field(default_factory=list)  # CMD lines (deprecated): all of them run
    launch: Launch | None = None  # LAUNCH or CMDS; never inherited from the base, as sealer
    apps: dict[str, App] = field(default_factory=dict)  # the base's apps, then this Kubefile's
    container_images: list[dict] = field(default_factory=list)  # copied into registry/
    arch: str = field(default_factory=lambda: _arch())  # --platform's, or this machine's
    base_image: Image | None = None  # FROM's (its layers are the new image's lower layers)

    def values(self) -> dict[str, str]:
        """What $NAME expands to. ARCH as sealer's COPY knows it (`COPY ${ARCH}/* .`): this
        machine's architecture, unless an ARG or ENV names it."""
        return {"ARCH": self.arch, **self.run_env()}

    def run_env(self) -> dict[str, str]:
        return {**self.args, **self.env}


def _arch() -> str:
    import platform

    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


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
        image_type: str | None = None,
        collect_images: bool = True,
        ignored_images: frozenset[str] = frozenset(),
        platform: str | None = None,
    ):
        self.where = str(kubefile_path)
        self.kubefile_dir = kubefile_path.resolve().parent
        self.context = context.resolve()
        self.tag = tag
        self.build_args = dict(build_args or {})
        self.no_cache = no_cache
        self.out = out
        self.run_timeout, self.memory = run_timeout, memory
        self.image_type = image_type  # sealer build --type: what the result must be
        self.collect_images = collect_images  # --build-mode all (lite: False)
        self.ignored_images = ignored_images  # --ignored-image-list: as named, or in full
        # --platform linux/amd64,linux/arm64: one build per platform, named as one index
        self.platforms = [_platform(p.strip()) for p in platform.split(",")] if platform else [None]
        self.platform = self.platforms[0]  # (arch, variant) of the build under way
        self.base_name = "scratch"
        self.previous: dict = {}
        self.cached = self.executed = 0
        self.instructions = kubefile.read(kubefile_path)
        if not images.is_image_ref(tag):
            raise KubefileError(f"-t {tag!r}: an image name is NAME:TAG, e.g. my-app:v1")
        if not self.context.is_dir():
            raise KubefileError(f"{context}: the build context is not a folder")
        runs = [ins for ins in self.instructions if ins.keyword == "RUN"]
        if runs:
            check_support(f"{self.where}:{runs[0].line}: RUN")

    def build(self) -> BuildResult:
        waiting = lambda: self._say("Waiting for another sealer build to finish...")  # noqa: E731
        with layers.cache_lock(waiting), oci_store.store().in_use():
            record = images.store_record(self.tag) or {}
            self.previous = {} if self.no_cache else dict(record.get("instances") or {})
            made = []
            for platform in self.platforms:
                self.platform = platform
                if len(self.platforms) > 1:
                    self._say(f"Platform linux/{'/'.join(p for p in platform if p)}")
                made.append(self._build())
            return self._name(made, record)

    def _name(self, made: list[dict], record: dict) -> BuildResult:
        """Name the built manifest, or an index of one per platform, in the store."""
        descriptors = [{k: v for k, v in m.items() if k != "build_key"} for m in made]
        digests = [d["digest"] for d in descriptors]
        steps = len(self.instructions)
        if record.get("instance_digests") == digests and oci_store.find(self.tag):
            image = images.from_store(self.tag)
            self._check_type(image.is_application, BuildState(base=self.base_name))
            self._say(f"Unchanged: {self.tag} ({image.digest}) already holds this build")
            return BuildResult(image, steps, self.cached, self.executed, unchanged=True)
        descriptor = oci_store.write_built(self.tag, descriptors)
        images.save_build_record(
            self.tag,
            {
                "digest": descriptor["digest"],
                "instance_digests": digests,
                "instances": {
                    m["build_key"]: {k: v for k, v in m.items() if k != "build_key"} for m in made
                },
                "base": self.base_name,
                "kubefile": str(Path(self.where).resolve()),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        image = images.from_store(self.tag)
        self._say(f"Successfully built {self.tag} ({image.digest})")
        return BuildResult(image, steps, self.cached, self.executed, unchanged=False)

    def _build(self) -> dict:
        state = BuildState()
        if self.platform:
            state.arch = self.platform[0]
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
            if base.platforms and self.platform:  # a multi-arch base: this platform's
                base = images.from_store(base.name, self.platform[0])
        except SealerError as e:
            raise self._error(ins, str(e)) from None
        state.base_image = base
        self.base_name = ref
        state.layer_key, state.rootfs = layers.key("from", base.digest), Path(base.rootfs)
        state.apps = {app.name: app for app in base.apps}
        self._say(f" ---> {base.name} ({base.runtime} {base.version}, {base.digest[:19]})")

    def _env(self, ins: Instruction, state: BuildState) -> None:
        for name, value in kubefile.pairs(ins, self.where).items():
            state.env[name] = kubefile.substitute(value, state.values(), ins, self.where)

    def _label(self, ins: Instruction, state: BuildState) -> None:
        for name, value in kubefile.pairs(ins, self.where).items():
            state.labels[name] = kubefile.substitute(value, state.values(), ins, self.where)

    def _cmd(self, ins: Instruction, state: BuildState) -> None:
        if not state.cmd:
            self._say("Warning: CMD is deprecated; use LAUNCH (apps) or CMDS (commands)")
        state.cmd += kubefile.launch_commands(ins, self.where)  # sealer runs every CMD

    def _cmds(self, ins: Instruction, state: BuildState) -> None:
        state.launch = Launch(cmds=tuple(kubefile.json_list(ins, self.where)[1]))

    def _launch(self, ins: Instruction, state: BuildState) -> None:
        names = kubefile.json_list(ins, self.where)[1]
        for name in names:
            self._known_app(ins, state, name)
        state.launch = Launch(app_names=tuple(names))

    def _maintainer(self, ins: Instruction, state: BuildState) -> None:
        self._say("Warning: MAINTAINER is deprecated; use LABEL maintainer=...")
        state.labels["maintainer"] = ins.text

    def _kubeversion(self, ins: Instruction, state: BuildState) -> None:
        kubefile.kube_version_range(ins, self.where)
        state.labels[apps.KUBE_VERSION_LABEL] = ins.text.strip()

    def _appcmds(self, ins: Instruction, state: BuildState) -> None:
        name, words = kubefile.json_list(ins, self.where)
        app = self._known_app(ins, state, name)
        state.apps[name] = replace(app, cmds=tuple(words))

    def _appenv(self, ins: Instruction, state: BuildState) -> None:
        name, env = kubefile.app_env(ins, self.where)
        app = self._known_app(ins, state, name)
        state.apps[name] = replace(app, env={**app.env, **env})

    def _known_app(self, ins: Instruction, state: BuildState, name: str) -> App:
        if name not in state.apps:
            known = ", ".join(sorted(state.apps)) or "none"
            raise self._error(ins, f"no app named {name!r} (apps so far: {known})")
        return state.apps[name]

    def _app(self, ins: Instruction, state: BuildState) -> None:
        """APP NAME SOURCE...: the sources become the folder application/apps/NAME/."""
        text = kubefile.substitute(ins.text, state.values(), ins, self.where)
        name, sources = kubefile.app_sources(replace(ins, text=text), self.where)
        files: list[tuple[Path, str]] = []  # (a local file or folder, what names it in the key)
        for source in sources:
            if source.startswith("local://"):
                local = source[len("local://") :]
                files += [(m, source) for m in self._matches(ins, local)]
            else:
                files.append((self._download(ins, source), source))
        app_type, launch_files = apps.detect([f for f, _ in files])
        target = f"{apps.APPS_DIR}/{name}"
        # Added to what is there (a COPY may have put files in the folder first), as sealer does.
        self._copy_layer(ins, state, files, target, into_folder=True)
        state.apps[name] = App(name, app_type, launch_files)
        if ins.keyword in ("CNI", "CSI"):
            prefix = apps.CNI_LABEL_PREFIX if ins.keyword == "CNI" else apps.CSI_LABEL_PREFIX
            state.labels[prefix + name] = "true"
        self._say(f" ---> app {name}: {app_type or 'no type (needs APPCMDS)'}")

    _cni = _csi = _app

    def _download(self, ins: Instruction, url: str, checksum: str = "") -> Path:
        try:
            path, digest = fetch.download(url, checksum)
        except SealerError as e:
            raise self._error(ins, str(e)) from None
        self._say(f" ---> fetched {url} ({digest[:19]})")
        return path

    def _copy(self, ins: Instruction, state: BuildState) -> None:
        words = shlex.split(kubefile.substitute(ins.text, state.values(), ins, self.where))
        *sources, dest = words
        files = [
            (m, str(m.relative_to(self.context))) for s in sources for m in self._matches(ins, s)
        ]
        target = self._destination(ins, dest)
        into_folder = dest.endswith("/") or len(files) > 1 or any(f.is_dir() for f, _ in files)
        self._copy_layer(ins, state, files, target, into_folder)

    def _add(self, ins: Instruction, state: BuildState) -> None:
        """ADD: COPY, plus URLs (downloaded, kept as files) and local tar archives (unpacked)."""
        words = shlex.split(kubefile.substitute(ins.text, state.values(), ins, self.where))
        checksum = kubefile.fetch_checksum(words[0]) if words else ""
        *sources, dest = words[1:] if checksum else words
        files: list[tuple[Path, str]] = []
        for source in sources:
            if source.startswith(("http://", "https://")):
                files.append((self._download(ins, source, checksum), source))
                continue
            for match in self._matches(ins, source):
                if match.is_file() and match.name.endswith(images.ARCHIVE_SUFFIXES):
                    try:
                        files.append((images.unpacked_archive(match), f"{source} (unpacked)"))
                    except SealerError as e:
                        raise self._error(ins, str(e)) from None
                else:
                    files.append((match, str(match.relative_to(self.context))))
        target = self._destination(ins, dest)
        into_folder = dest.endswith("/") or len(files) > 1 or any(f.is_dir() for f, _ in files)
        self._copy_layer(ins, state, files, target, into_folder)

    def _copy_layer(
        self,
        ins: Instruction,
        state: BuildState,
        files: list[tuple[Path, str]],
        target: str,
        into_folder: bool,
    ) -> None:
        """A layer with files copied to target."""
        try:
            inputs = [(label, _content_digest(f)) for f, label in files]
        except SealerError as e:
            raise self._error(ins, str(e)) from None
        layer_key = layers.key(state.layer_key, ins.keyword, target, into_folder, inputs)

        def copy(rootfs: Path) -> None:
            for f, _ in files:
                try:
                    _copy_into(f, rootfs / target, into_folder, rootfs)
                except SealerError as e:
                    raise self._error(ins, str(e)) from None

        self._layer(ins, state, layer_key, copy)

    def _run(self, ins: Instruction, state: BuildState) -> None:
        env = state.run_env()
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

    def _layer(self, ins: Instruction | None, state: BuildState, layer_key: str, change) -> None:
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

    def _check_type(self, application: bool, state: BuildState) -> None:
        """sealer build --type: the image must come out as that kind."""
        made = apps.APP_IMAGE if application else apps.CLUSTER_IMAGE
        if self.image_type and made != self.image_type:
            what = "apps only" if application else "Kubernetes"
            raise KubefileError(
                f"{self.where}: --type {self.image_type}, but FROM {state.base} makes an image "
                f"with {what} ({made})"
            )

    def _check_apps(self, state: BuildState) -> None:
        """An app whose files say nothing of how to launch it needs APPCMDS (as sealer)."""
        for app in state.apps.values():
            if not app.type and not app.cmds:
                raise KubefileError(
                    f"{self.where}: app {app.name!r}: its files are neither a helm chart, YAML "
                    f"manifests nor shell scripts; give its launch command with APPCMDS"
                )

    def _finish(self, state: BuildState, steps: int) -> dict:
        """This platform's image in the store (not yet named): its manifest's descriptor."""
        if state.rootfs is None:
            raise KubefileError(
                f"{self.where}: FROM scratch needs an APP (an application image) or a COPY "
                f"that brings a Metadata file (a cluster image)"
            )
        self._check_apps(state)
        self._collect_container_images(state)
        launch = state.launch or Launch(cmds=tuple(state.cmd))
        app_list = [a.to_json() for a in state.apps.values()]
        platform = "/".join(self.platform) if self.platform else ""
        build_key = layers.key(
            state.layer_key, state.labels, launch.to_json(), state.env, app_list, platform
        )
        known = self.previous.get(build_key)
        if known and oci_store.store().has_blob(known["digest"]):
            return {**known, "build_key": build_key}  # the image this build made before
        staging = Path(layers.cache_root()) / f".image-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(state.rootfs, staging, symlinks=True)
            self._write_metadata(staging, state)
            metadata = images.read_metadata(staging, self.tag)
            descriptor = images.store_rootfs(self.tag, staging, state.base_image, metadata)
            oci_images.adopt_rootfs(descriptor["digest"], staging)  # apply unpacks nothing
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {**descriptor, "build_key": build_key}

    def _collect_container_images(self, state: BuildState) -> None:
        """The container images the manifests, charts and image lists name, copied into the
        rootfs' registry/ as a cached layer (keyed by the names: a tag moved upstream needs
        --no-cache, as with any build cache)."""
        base = _metadata_of(state.rootfs)
        inherited = [i for i in base.get("containerImages") or [] if isinstance(i, dict)]
        try:
            found = containers.find(state.rootfs, self.context, self._say)
        except SealerError as e:
            raise KubefileError(f"{self.where}: {e}") from None
        arch, variant = self.platform or (str(base.get("arch") or state.arch), "")
        if self.platform and base.get("arch") and base["arch"] != arch:
            raise KubefileError(
                f"{self.where}: --platform linux/{arch}, but the base image {state.base} is for "
                f"{base['arch']}"
            )
        known = {c.get("name") for c in inherited}
        wanted = [
            i
            for i in found
            if i.served_as not in known and not {i.ref, i.source} & self.ignored_images
        ]
        state.container_images = inherited
        if not wanted or not self.collect_images:
            if wanted:
                self._say(f"--build-mode lite: {len(wanted)} container images not copied")
            return
        shown = f"linux/{arch}" + (f"/{variant}" if variant else "")
        self._say(f"Step collect : {len(wanted)} container images for {shown}")
        layer_key = layers.key(state.layer_key, "IMAGES", shown, [i.source for i in wanted])
        copied: list[dict] = []

        def copy(rootfs: Path) -> None:
            try:
                copied.extend(collect.copy_all(wanted, rootfs, arch, self._say, variant=variant))
            except SealerError as e:
                raise KubefileError(f"{self.where}: {e}") from None
            (rootfs.parent / "container-images.json").write_text(json.dumps(copied))

        self._layer(None, state, layer_key, copy)
        if not copied:  # from the cache
            copied = json.loads((state.rootfs.parent / "container-images.json").read_text())
        state.container_images = inherited + copied

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
        metadata.pop("cmd", None)  # what the base launched is not inherited (as sealer)
        metadata["launch"] = (state.launch or Launch(cmds=tuple(state.cmd))).to_json()
        metadata["applications"] = [a.to_json() for a in state.apps.values()]
        if "version" not in metadata and state.base == "scratch":
            metadata["type"] = apps.APP_IMAGE
        elif metadata.get("type") != apps.APP_IMAGE:
            metadata.setdefault("type", apps.CLUSTER_IMAGE)
        self._check_type(metadata["type"] == apps.APP_IMAGE, state)
        if state.env:
            metadata["env"] = {**(metadata.get("env") or {}), **state.env}
        if state.container_images:
            metadata["containerImages"] = state.container_images
        if self.platform and not metadata.get("arch"):  # an app image: the platform's
            metadata["arch"] = self.platform[0]
        beneath.write_file(rootfs, "Metadata", (json.dumps(metadata, indent=1) + "\n").encode())
        try:
            images.read_metadata(rootfs, f"{self.where}: the built image")
        except SealerError as e:
            raise KubefileError(str(e)) from None


def _platform(value: str) -> tuple[str, str]:
    """--platform linux/ARCH[/VARIANT] -> (arch, variant)."""
    m = re.fullmatch(r"linux/([a-z0-9_]+)(?:/([a-z0-9]+))?", value)
    if not m:
        raise KubefileError(
            f"--platform {value!r}: expected linux/ARCH[/VARIANT], e.g. linux/arm64"
        )
    return m[1], m[2] or ""


def _metadata_of(rootfs: Path | None) -> dict:
    """The rootfs' Metadata as far as it reads (checked properly when the image is made)."""
    try:
        raw = beneath.read_file(rootfs, "Metadata") if rootfs else None
        metadata = json.loads(raw) if raw else {}
    except (beneath.LinkRefused, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


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
