"""The local image store: one OCI image layout under $SEALER_HOME/oci.

`oci-layout`, `index.json` and `blobs/sha256/`, as the image-spec lays them out, so skopeo,
umoci and any other OCI tool read it as is. index.json names each image by its full reference
(the `org.opencontainers.image.ref.name` annotation); a blob two images share is one file.

Every write is atomic: blobs are written to a temporary file and renamed to their digest,
index.json is rewritten through a temporary file and a rename, under an flock, so a killed
sealer leaves nothing half written that a later one would list or trust.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cluster.errors import SealerError
from cluster.outputs import replacing, write_atomic

REF_NAME = "org.opencontainers.image.ref.name"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
LAYERS = (OCI_LAYER_GZIP, OCI_LAYER, DOCKER_LAYER_GZIP)
MAX_JSON_BYTES = 4 * 2**20  # a manifest, index or config: a few KiB in practice
DIGEST_HEX = 64


class StoreError(SealerError):
    pass


def check_digest(digest: str, where: str) -> str:
    """The hex of a sha256 digest (a path component: checked before it is one)."""
    algorithm, _, hexa = str(digest).partition(":")
    if (
        algorithm != "sha256"
        or len(hexa) != DIGEST_HEX
        or not all(c in "0123456789abcdef" for c in hexa)
    ):
        raise StoreError(f"{where}: {digest!r} is not a sha256 digest")
    return hexa


def is_digest(value: str) -> bool:
    try:
        check_digest(value, "")
    except StoreError:
        return False
    return True


class Layout:
    """An OCI image layout on disk (the store, a staging copy, an unpacked archive)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def blob_path(self, digest: str, where: str = "") -> Path:
        return self.blobs / "sha256" / check_digest(digest, where or str(self.root))

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def create(self) -> Layout:
        (self.blobs / "sha256").mkdir(parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            _write_atomic(marker, LAYOUT_BYTES)
        if not (self.root / "index.json").exists():
            _write_atomic(self.root / "index.json", index_bytes([]))
        return self

    # ---- blobs ----

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            _write_atomic(path, data)
        return digest

    def read_blob(self, digest: str, where: str, limit: int = MAX_JSON_BYTES) -> bytes:
        """A blob's bytes, checked against its digest (a store edited by hand, or a disk that
        lost bytes, is caught here rather than trusted)."""
        path = self.blob_path(digest, where)
        try:
            size = path.stat().st_size
            if size > limit:
                raise StoreError(
                    f"{where}: {digest[:19]} is {size} bytes, more than the limit of {limit}"
                )
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{where}: blob {digest} is missing from {self.root}") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"{where}: blob {digest} does not match its digest; refused")
        return data

    def read_json(self, digest: str, where: str) -> dict:
        data = self.read_blob(digest, where)
        try:
            value = json.loads(data)
        except ValueError as e:
            raise StoreError(f"{where}: {digest[:19]} is not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise StoreError(f"{where}: {digest[:19]} is not a JSON object")
        return value

    # ---- index.json ----

    def entries(self) -> list[dict]:
        try:
            index = json.loads((self.root / "index.json").read_text())
        except FileNotFoundError:
            return []
        except ValueError as e:
            raise StoreError(f"{self.root}/index.json is not valid JSON: {e}") from None
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list):
            raise StoreError(f"{self.root}/index.json has no list of manifests")
        return [m for m in manifests if isinstance(m, dict)]

    def find(self, name: str) -> dict | None:
        for entry in self.entries():
            if (entry.get("annotations") or {}).get(REF_NAME) == name:
                return entry
        return None

    def names(self) -> list[tuple[str, dict]]:
        return [
            ((e.get("annotations") or {}).get(REF_NAME, ""), e)
            for e in self.entries()
            if (e.get("annotations") or {}).get(REF_NAME)
        ]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer of index.json at a time (an flock: a killed sealer never holds it)."""
        self.create()
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Blobs are being written or read before a name reaches them (a pull, a load, a build,
        a save): a shared lock that garbage collection waits for, so it never removes them."""
        self.create()
        with open(self.root / ".gc-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            yield

    def set_name(self, name: str, descriptor: dict) -> None:
        """index.json names descriptor `name` (replacing what it named before). Call locked."""
        kept = [e for e in self.entries() if (e.get("annotations") or {}).get(REF_NAME) != name]
        _write_atomic(self.root / "index.json", index_bytes(kept + [named(name, descriptor)]))

    def remove_name(self, name: str) -> None:
        kept = [e for e in self.entries() if (e.get("annotations") or {}).get(REF_NAME) != name]
        _write_atomic(self.root / "index.json", index_bytes(kept))

    # ---- what an entry reaches ----

    def reachable(self, descriptor: dict, where: str) -> list[str]:
        """Every blob a manifest or index names (itself included)."""
        digest = descriptor["digest"]
        found = [digest]
        media = descriptor.get("mediaType", "")
        document = self.read_json(digest, where)
        media = document.get("mediaType") or media
        if media in INDEXES or "manifests" in document:
            for child in document.get("manifests") or []:
                if self.has_blob(child.get("digest", "")):  # an index pulled for one platform
                    found += self.reachable(child, where)
        else:
            found.append(document.get("config", {}).get("digest", ""))
            found += [layer.get("digest", "") for layer in document.get("layers") or []]
        return [d for d in found if d]

    def collect_garbage(self) -> int:
        """Remove blobs no name reaches; how many went. Call locked; waits until no pull,
        load, build or save has blobs in flight (in_use)."""
        with open(self.root / ".gc-lock", "w") as gc_lock:
            fcntl.flock(gc_lock, fcntl.LOCK_EX)
            return self._collect()

    def _collect(self) -> int:
        keep: set[str] = set()
        for name, entry in self.names():
            with contextlib.suppress(SealerError):
                keep.update(self.reachable(entry, name))
        removed = 0
        folder = self.blobs / "sha256"
        for path in folder.iterdir() if folder.is_dir() else ():
            if f"sha256:{path.name}" not in keep and not path.name.startswith("."):
                path.unlink()
                removed += 1
        return removed

    def staging(self) -> Path:
        """A fresh folder beside the store, on its filesystem (for renames into it)."""
        self.create()
        return Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))


LAYOUT_BYTES = b'{"imageLayoutVersion": "1.0.0"}'


def named(name: str, descriptor: dict) -> dict:
    """An index.json entry: descriptor, annotated with its name."""
    entry = {k: descriptor[k] for k in ("mediaType", "digest", "size") if k in descriptor}
    entry["annotations"] = {REF_NAME: name}
    return entry


def index_bytes(manifests: list[dict]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=1
    ).encode()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def adopt_blob(layout: Layout, source: Path, digest: str, where: str, move: bool) -> None:
    """A file into the layout as blob `digest`, once its content is checked. move: the file is
    sealer's own (an unpacked archive beside the store), renamed; else it is copied, and the
    copy is what is checked (a user's file could change after a check)."""
    target = layout.blob_path(digest, where)
    if target.exists():
        return
    if move:
        if _sha256_of(source) != digest:
            raise StoreError(f"{where}: blob {digest} does not match its digest; refused")
        os.replace(source, target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with replacing(target) as (out, tmp), open(source, "rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)
        out.flush()
        if _sha256_of(tmp) != digest:
            raise StoreError(f"{where}: blob {digest} does not match its digest; refused")


def _sha256_of(path: Path) -> str:
    hashed = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hashed.update(chunk)
    return "sha256:" + hashed.hexdigest()
