"""Remote APP and ADD sources: downloaded at build time into a cache named by content digest.

The cache lets a rebuild whose download did not change reuse its layer (the layer key is the
digest, not the URL). An unreachable URL fails the build; nothing stale is used in its place.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cluster.errors import SealerError
from cluster.image import sealer_home

TIMEOUT = 30  # seconds without a byte
MAX_BYTES = 8 * 2**30  # a remote app source; a cluster image's binaries come by COPY


def download(url: str) -> tuple[Path, str]:
    """(the downloaded file, its sha256 digest); the file keeps the URL's base name."""
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
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            size = 0
            while chunk := answer.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SealerError(f"{url}: larger than {MAX_BYTES // 2**30} GiB; refused")
                digest.update(chunk)
                out.write(chunk)
        folder = cache / digest.hexdigest()
        folder.mkdir(exist_ok=True)
        os.replace(partial, folder / name)
    except urllib.error.HTTPError as e:
        raise SealerError(f"{url}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e.strerror or e
        raise SealerError(f"{url}: cannot download ({reason})") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return folder / name, "sha256:" + digest.hexdigest()
