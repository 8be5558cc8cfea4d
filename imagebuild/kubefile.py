"""Parse a Kubefile into instructions, each with its line number, and check their shape.

Syntax (a subset of the Dockerfile's, as sealer's Kubefile): one instruction per line, `#`
comments, a trailing backslash continues a line. FROM must come first (after ARGs).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import InputError


class KubefileError(InputError):
    """A problem in a Kubefile: one line naming the file and the line."""

    def __init__(self, message: str):
        super().__init__([message])


KEYWORDS = ("FROM", "COPY", "RUN", "ENV", "LABEL", "CMD", "ARG")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    text: str  # everything after the keyword, continuations joined

    def __str__(self) -> str:
        return f"{self.keyword} {self.text}"


def read(path: Path) -> list[Instruction]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KubefileError(f"{path}: no such Kubefile") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KubefileError(f"{path}: cannot read the Kubefile: {e}") from None
    return parse(text, str(path))


def parse(text: str, where: str) -> list[Instruction]:
    instructions = []
    for line_no, line in _logical_lines(text):
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in KEYWORDS:
            raise KubefileError(
                f"{where}:{line_no}: unknown instruction {keyword!r}; a Kubefile has "
                f"{', '.join(KEYWORDS)}"
            )
        if not rest:
            raise KubefileError(f"{where}:{line_no}: {keyword} needs an argument")
        instruction = Instruction(line_no, keyword, rest)
        _check_shape(instruction, where)
        instructions.append(instruction)
    _check_order(instructions, where)
    return instructions


def _logical_lines(text: str):
    """(first line number, line) with comments dropped and continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        yield start, pending + stripped
        pending = ""
    if pending.strip():
        yield start, pending.strip()


def _check_shape(ins: Instruction, where: str) -> None:
    at = f"{where}:{ins.line}: {ins.keyword}"
    if ins.keyword == "COPY":
        if ins.text.startswith("--"):
            raise KubefileError(f"{at}: options ({ins.text.split()[0]}) are not supported")
        if len(ins.text.split()) < 2:
            raise KubefileError(f"{at}: needs a source and a destination: COPY SRC... DEST")
    elif ins.keyword in ("ENV", "LABEL"):
        pairs(ins, where)
    elif ins.keyword == "ARG":
        name = ins.text.partition("=")[0]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise KubefileError(f"{at}: {name!r} is not a valid argument name")
    elif ins.keyword == "CMD":
        launch_commands(ins, where)
    elif ins.keyword == "FROM" and len(ins.text.split()) != 1:
        raise KubefileError(f"{at}: takes one image (NAME:TAG, a path, or scratch)")


def _check_order(instructions: list[Instruction], where: str) -> None:
    first_other = next((i for i in instructions if i.keyword != "ARG"), None)
    if first_other is not None and first_other.keyword != "FROM":
        raise KubefileError(
            f"{where}:{first_other.line}: {first_other.keyword} before FROM; only ARG may "
            f"come before FROM"
        )
    froms = [i for i in instructions if i.keyword == "FROM"]
    if not froms:
        raise KubefileError(f"{where}: no FROM instruction; a Kubefile starts FROM a base image")
    if len(froms) > 1:
        raise KubefileError(
            f"{where}:{froms[1].line}: a second FROM (the first is on line {froms[0].line}); "
            f"multi-stage builds are not supported"
        )


def pairs(ins: Instruction, where: str) -> dict[str, str]:
    """ENV/LABEL arguments: K=V pairs (values may be quoted), or the old `ENV K V` form."""
    try:
        words = shlex.split(ins.text)
    except ValueError as e:
        raise KubefileError(f"{where}:{ins.line}: {ins.keyword}: {e}") from None
    if ins.keyword == "ENV" and words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    result = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise KubefileError(f"{where}:{ins.line}: {ins.keyword}: expected K=V, got {word!r}")
        result[key] = value
    return result


def launch_commands(ins: Instruction, where: str) -> list[str]:
    """CMD: the shell form is one command; the JSON form lists several (sealer's CMDS)."""
    if not ins.text.startswith("["):
        return [ins.text]
    try:
        commands = json.loads(ins.text)
    except ValueError as e:
        raise KubefileError(f"{where}:{ins.line}: CMD: not a JSON list of commands: {e}") from None
    if not commands or not all(isinstance(c, str) and c.strip() for c in commands):
        raise KubefileError(f"{where}:{ins.line}: CMD: the list must hold non-empty strings")
    return commands


def substitute(text: str, values: dict[str, str], ins: Instruction, where: str) -> str:
    """Expand $NAME, ${NAME} and ${NAME:-default} from ARG and ENV values."""

    def one(m: re.Match) -> str:
        name = m[1] or m[3]
        if name in values:
            return values[name]
        if m[2] is not None:
            return m[2]
        raise KubefileError(
            f"{where}:{ins.line}: {ins.keyword}: ${name} is not set (declare it with ARG or ENV)"
        )

    return _VARIABLE.sub(one, text)
