"""`*.tmpl` files rendered with env values, in the subset of Go's text/template sealer's files
use: `{{ .Key }}` (spaces and `{{-`/`-}}` trims allowed). Anything else is refused by name."""

from __future__ import annotations

import re
from pathlib import Path

from cluster.errors import SealerError

SUFFIX = ".tmpl"
_ACTION = re.compile(r"(\s*)\{\{(-?)\s*(.*?)\s*(-?)\}\}(\s*)", re.S)
# `.Key`, and sealer's two functions: `.Key | b64enc`, `b64enc .Key` (b64dec alike)
_KEY = re.compile(
    r"^(?:(?P<fn1>b64enc|b64dec)\s+)?\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s*\|\s*(?P<fn2>b64enc|b64dec))?$"
)


class TemplateError(SealerError):
    pass


def _parsed(action: str, where: str) -> tuple[str, str]:
    """(the key, the function applied or "")."""
    m = _KEY.match(action)
    if not m or (m["fn1"] and m["fn2"]):
        raise TemplateError(
            f"{where}: {{{{ {action} }}}} is not supported; a template names a value as "
            f"{{{{ .Key }}}}, or {{{{ .Key | b64enc }}}} / b64dec"
        )
    return m["key"], m["fn1"] or m["fn2"] or ""


def _key(action: str, where: str) -> str:
    return _parsed(action, where)[0]


def _apply(function: str, value: str) -> str:
    import base64
    import binascii

    if function == "b64enc":
        return base64.b64encode(value.encode()).decode()
    if function == "b64dec":
        try:
            return base64.b64decode(value.encode(), validate=True).decode(errors="replace")
        except binascii.Error as e:
            return str(e)  # as sealer's b64dec: the error text in place of the value
    return value


def keys(text: str, where: str) -> list[str]:
    return [_key(m[3], where) for m in _ACTION.finditer(text)]


def render(text: str, values: dict[str, str], where: str) -> str:
    def one(m: re.Match) -> str:
        key, function = _parsed(m[3], where)
        if key not in values:
            raise TemplateError(f"{where}: {{{{ .{key} }}}} has no value ({key} is not set)")
        before = "" if m[2] else m[1]
        after = "" if m[4] else m[5]
        return before + _apply(function, values[key]) + after

    return _ACTION.sub(one, text)


def templates_in(folder: Path) -> list[Path]:
    """The template files under folder. Links are never followed, to a folder or a file: an
    image's link could lead anywhere on this machine."""
    import os

    found = []
    for here, _dirs, names in os.walk(folder):  # does not descend into linked folders
        for name in names:
            path = Path(here) / name
            if name.endswith(SUFFIX) and path.is_file() and not path.is_symlink():
                found.append(path)
    return sorted(found)


def missing_keys(folder: Path, values: dict[str, str]) -> list[str]:
    """One line per value a template under folder names and values lack."""
    problems = []
    for path in templates_in(folder):
        where = str(path.relative_to(folder))
        try:
            text = path.read_text(encoding="utf-8")
            problems += [f"{where}: .{k} is not set" for k in keys(text, where) if k not in values]
        except (TemplateError, UnicodeDecodeError) as e:
            problems.append(str(e))
    return problems


def render_folder(folder: Path, values: dict[str, str]) -> None:
    """Each NAME.tmpl becomes NAME, rendered (the template itself is removed)."""
    for path in templates_in(folder):
        where = str(path.relative_to(folder))
        rendered = render(path.read_text(encoding="utf-8"), values, where)
        target = path.with_name(path.name[: -len(SUFFIX)])
        if target.is_symlink():
            target.unlink()
        target.write_text(rendered, encoding="utf-8")
        path.unlink()


ROOTFS_FOLDERS = ("etc", "charts", "manifests")  # where sealer renders a rootfs' templates


def rootfs_templates(rootfs: str) -> dict[str, str]:
    """The templates of an image's rootfs: path relative to the rootfs -> text."""
    found = {}
    for folder in ROOTFS_FOLDERS:
        base = Path(rootfs) / folder
        if base.is_dir() and not base.is_symlink():
            for path in templates_in(base):
                found[str(path.relative_to(rootfs))] = path.read_text(encoding="utf-8")
    return found
