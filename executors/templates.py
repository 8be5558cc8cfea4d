"""A rootfs' templates rendered for one host, packed as a tar to unpack in the rootfs there."""

from __future__ import annotations

import io
import shlex
import tarfile

from cluster import templates


def packed(found: dict[str, str], values: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, text in sorted(found.items()):
            data = templates.render(text, values, path).encode()
            info = tarfile.TarInfo(path[: -len(templates.SUFFIX)])
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def install_command(rootfs: str) -> str:
    """Unpack the rendered files into the rootfs and remove their templates."""
    quoted = shlex.quote(rootfs)
    return (
        f"tar -x -C {quoted} --no-same-owner && cd {quoted} && "
        f"{{ find {' '.join(templates.ROOTFS_FOLDERS)} -name '*{templates.SUFFIX}' -type f "
        f"-delete 2>/dev/null || true; }}"
    )
