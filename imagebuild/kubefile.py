"""Parse a Kubefile into instructions, each with its line number, and check their shape.

Syntax (a subset of the Dockerfile's, as sealer's Kubefile): one instruction per line, `#`
comments, a trailing backslash continues a line. FROM must come first (after ARGs). Sealer's
own instructions (APP, APPCMDS, APPENV, LAUNCH, CMDS, CNI, CSI, KUBEVERSION) follow the rules
of sealer's parser (build/kubefile/parser): LAUNCH or CMDS once, as the last instruction.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cluster.apps import kube_version_spec, name_problem
from cluster.errors import InputError


class KubefileError(InputError):
    """A problem in a Kubefile: one line naming the file and the line."""

    def __init__(self, message: str):
        super().__init__([message])


KEYWORDS = (
    "FROM",
    "COPY",
    "ADD",
    "RUN",
    "ENV",
    "LABEL",
    "ARG",
    "APP",
    "APPCMDS",
    "APPENV",
    "CNI",
    "CSI",
    "LAUNCH",
    "CMDS",
    "CMD",
    "KUBEVERSION",
    "MAINTAINER",
)
APP_KEYWORDS = ("APP", "CNI", "CSI")  # CNI and CSI are apps with a label
LAST_KEYWORDS = ("LAUNCH", "CMDS")
SOURCE_SCHEMES = ("local://", "http://", "https://")
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


CHECKSUM_FLAG = re.compile(r"^--checksum=(sha256:[0-9a-f]{64})\Z")


def fetch_checksum(word: str) -> str:
    """Docker's ADD --checksum=sha256:HEX: the pin, or "" when the word is not one."""
    match = CHECKSUM_FLAG.match(word)
    return match[1] if match else ""


def _check_shape(ins: Instruction, where: str) -> None:
    at = f"{where}:{ins.line}: {ins.keyword}"
    if ins.keyword in APP_KEYWORDS:
        app_sources(ins, where)
    elif ins.keyword in ("APPCMDS", "LAUNCH", "CMDS"):
        json_list(ins, where)
    elif ins.keyword == "APPENV":
        app_env(ins, where)
    elif ins.keyword == "KUBEVERSION":
        kube_version_range(ins, where)
    elif ins.keyword in ("COPY", "ADD"):
        words = ins.text.split()
        if ins.keyword == "ADD" and words and words[0].startswith("--checksum="):
            if not fetch_checksum(words[0]):
                raise KubefileError(f"{at}: {words[0]!r}: give --checksum=sha256:<64 hex digits>")
            if len(words) != 3 or not words[1].startswith(("http://", "https://")):
                raise KubefileError(f"{at}: --checksum takes one http(s) source: "
                                    "ADD --checksum=sha256:HEX URL DEST")  # fmt: skip
            words = words[1:]
        elif ins.text.startswith("--"):
            raise KubefileError(f"{at}: options ({ins.text.split()[0]}) are not supported")
        if len(words) < 2:
            raise KubefileError(
                f"{at}: needs a source and a destination: {ins.keyword} SRC... DEST"
            )
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
    for keyword in LAST_KEYWORDS:
        found = [i for i in instructions if i.keyword == keyword]
        if len(found) > 1:
            raise KubefileError(
                f"{where}:{found[1].line}: a second {keyword} (the first is on line "
                f"{found[0].line}); only one {keyword} may be given"
            )
        if found and found[0] is not instructions[-1]:
            raise KubefileError(
                f"{where}:{found[0].line}: {keyword} must be the last instruction of the Kubefile"
            )
    launch = next((i for i in instructions if i.keyword == "LAUNCH"), None)
    cmd = next((i for i in instructions if i.keyword == "CMD"), None)
    if launch and cmd:
        raise KubefileError(
            f"{where}:{cmd.line}: CMD and LAUNCH (line {launch.line}) exclude each other; "
            f"launch apps with LAUNCH, or commands with CMDS"
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


def _words(ins: Instruction, where: str) -> list[str]:
    try:
        return shlex.split(ins.text)
    except ValueError as e:
        raise KubefileError(f"{where}:{ins.line}: {ins.keyword}: {e}") from None


def app_sources(ins: Instruction, where: str) -> tuple[str, list[str]]:
    """APP/CNI/CSI NAME SOURCE...: each source local://PATH, http:// or https://."""
    words = _words(ins, where)
    at = f"{where}:{ins.line}: {ins.keyword}"
    if len(words) < 2:
        raise KubefileError(f"{at}: needs a name and its sources: {ins.keyword} NAME local://PATH")
    name, sources = words[0], words[1:]
    if name_problem(name):
        raise KubefileError(f"{at}: {name!r} {name_problem(name)}")
    for source in sources:
        if not source.startswith(SOURCE_SCHEMES) or source in SOURCE_SCHEMES:
            raise KubefileError(
                f"{at}: source {source!r} must start with local://, http:// or https://"
            )
    return name, sources


def json_list(ins: Instruction, where: str) -> tuple[str, list[str]]:
    """LAUNCH/CMDS ["a", ...], or APPCMDS NAME ["a", ...]: (the app name or "", the list)."""
    at = f"{where}:{ins.line}: {ins.keyword}"
    name, text = "", ins.text
    if ins.keyword == "APPCMDS":
        name, _, text = ins.text.partition(" ")
        text = text.strip()
    example = {"APPCMDS": 'APPCMDS NAME ["cmd", "arg"]'}.get(
        ins.keyword, f'{ins.keyword} ["a", "b"]'
    )
    if not text.startswith("[") and ins.keyword == "LAUNCH":  # sealer reads words as well
        return name, _words(ins, where)
    if not text.startswith("[") and ins.keyword == "CMDS":  # one command, as CMD's shell form
        return name, [text]
    try:
        values = json.loads(text)
    except ValueError:
        raise KubefileError(f"{at}: expected a JSON list of strings: {example}") from None
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v.strip() for v in values)
    ):
        raise KubefileError(f"{at}: expected a non-empty JSON list of strings: {example}")
    return name, values


def app_env(ins: Instruction, where: str) -> tuple[str, dict[str, str]]:
    """APPENV NAME K=V ...: sealer ignores words without `=`; so does this."""
    words = _words(ins, where)
    if len(words) < 2:
        raise KubefileError(f"{where}:{ins.line}: APPENV: needs an app name and K=V pairs")
    pairs_ = dict(w.split("=", 1) for w in words[1:] if "=" in w and not w.startswith("="))
    return words[0], pairs_


def kube_version_range(ins: Instruction, where: str):
    """KUBEVERSION: a SemVer range (`1.22 - 1.24`, `>=1.22, <1.26`: cluster.apps)."""
    try:
        return kube_version_spec(ins.text.strip())
    except ValueError as e:
        raise KubefileError(
            f"{where}:{ins.line}: KUBEVERSION: {ins.text.strip()!r} is not a SemVer range ({e})"
        ) from None
