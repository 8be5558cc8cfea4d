"""`*.tmpl` files rendered with env values, in the subset of Go's text/template sealer's files
use: `{{ .Key }}` (spaces and `{{-`/`-}}` trims allowed). Anything else is refused by name."""

from __future__ import annotations

import re
from pathlib import Path

from cluster.errors import SealerError

SUFFIX = ".tmpl"
_ACTION = re.compile(r"(\s*)\{\{(-?)\s*(.*?)\s*(-?)\}\}(\s*)", re.S)
_KEY = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)$")


class TemplateError(SealerError):
    pass


def _key(action: str, where: str) -> str:
    m = _KEY.match(action)
    if not m:
        raise TemplateError(
            f"{where}: {{{{ {action} }}}} is not supported; a template names a value as "
            f"{{{{ .Key }}}}"
        )
    return m[1]


def keys(text: str, where: str) -> list[str]:
    return [_key(m[3], where) for m in _ACTION.finditer(text)]


def render(text: str, values: dict[str, str], where: str) -> str:
    def one(m: re.Match) -> str:
        key = _key(m[3], where)
        if key not in values:
            raise TemplateError(f"{where}: {{{{ .{key} }}}} has no value ({key} is not set)")
        before = "" if m[2] else m[1]
        after = "" if m[4] else m[5]
        return before + values[key] + after

    return _ACTION.sub(one, text)


def templates_in(folder: Path) -> list[Path]:
    """The template files under folder (links never followed)."""
    found = []
    for path in sorted(folder.rglob(f"*{SUFFIX}")):
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


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
