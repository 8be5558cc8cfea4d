"""Remote APP and ADD sources: downloaded at build time into a cache named by content digest.

The cache lets a rebuild whose download did not change reuse its layer (the layer key is the
digest, not the URL). An unreachable URL fails the build; nothing stale is used in its place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cluster.errors import SealerError
from cluster.image import sealer_home

TIMEOUT = 30  # seconds without a byte
DEADLINE = 3600  # seconds for a whole download: a server dripping bytes cannot hold a build
MAX_BYTES = 8 * 2**30  # a remote app source; a cluster image's binaries come by COPY
CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}\Z")


def download(url: str, checksum: str = "", deadline: float = DEADLINE) -> tuple[Path, str]:
    """(the downloaded file, its sha256 digest); the file keeps the URL's base name. A body
    shorter than the server's Content-Length, a download past the deadline, or (with
    checksum, `sha256:HEX` as Docker's ADD --checksum) other content is refused."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SealerError(f"{url}: not an http:// or https:// URL")
    name = posixpath.basename(parsed.path) or "download"
    if name in (".", ".."):
        name = "download"
    cache = sealer_home() / "cache" / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, partial = tempfile.mkstemp(dir=cache, prefix=".partial-")
    try:
        ends = time.monotonic() + deadline
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            announced = _announced_length(answer)
            size = 0
            while chunk := answer.read1(1 << 20):  # what has arrived: a drip is seen as one
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SealerError(f"{url}: larger than {MAX_BYTES // 2**30} GiB; refused")
                if time.monotonic() > ends:
                    raise SealerError(
                        f"{url}: still downloading after {deadline:g}s ({size:,} bytes); refused"
                    )
                digest.update(chunk)
                out.write(chunk)
        if announced is not None and size != announced:
            raise SealerError(
                f"{url}: the server announced {announced:,} bytes and sent {size:,}; refused"
            )
        got = "sha256:" + digest.hexdigest()
        if checksum and got != checksum:
            raise SealerError(f"{url}: checksum mismatch: --checksum={checksum}, got {got}")
        folder = cache / digest.hexdigest()
        folder.mkdir(exist_ok=True)
        os.replace(partial, folder / name)
    except http.client.IncompleteRead as e:
        raise SealerError(f"{url}: the body ended early ({len(e.partial):,} bytes)") from None
    except urllib.error.HTTPError as e:
        raise SealerError(f"{url}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e.strerror or e
        raise SealerError(f"{url}: cannot download ({reason})") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return folder / name, "sha256:" + digest.hexdigest()


def _announced_length(answer) -> int | None:
    """The body's length as the server announced it (none for a chunked or encoded body)."""
    if answer.headers.get("Content-Encoding") or answer.headers.get("Transfer-Encoding"):
        return None
    text = answer.headers.get("Content-Length", "")
    return int(text) if text.isdigit() else None
