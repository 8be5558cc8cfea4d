"""What external programs the project runs on the operator's side, read from its own code.

Python: `shutil.which("X")`, and the program of every `subprocess` call (or of the sandbox's
`sh(...)` helper) whose argv starts with a string, directly or through a name assigned in the
same function. Shell: the commands of `scripts/*` and the `command -v X` they ask about.
Programs given as a variable that holds a found path (skopeo's, helm's) are found where the
path is looked up (`shutil.which`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
SKIPPED_PARTS = {".venv", ".vendor", ".demo", "build", "__pycache__", ".git", "site"}
SHELL_WORDS = {
    # bash keywords and builtins: not programs
    "if", "then", "else", "elif", "fi", "for", "while", "do", "done", "case", "esac", "in",
    "function", "return", "exit", "exec", "export", "local", "set", "shift", "cd", "echo",
    "printf", "read", "trap", "wait", "true", "false", "test", "[", "[[", "]]", "command",
    "source", ".", "eval", "kill", "unset", "umask", "type", "declare", "break", "continue",
    "pwd", "mapfile", "readonly", "let", "time", "{", "}",
}  # fmt: skip


def python_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if SKIPPED_PARTS & set(parts):
            continue
        if parts[:2] == ("examples", "images") and "-v" in parts[2]:
            continue  # built images: copies of examples/images/src
        found.append(path)
    return sorted(found)


def _program(node: ast.AST, names: dict[str, ast.AST], depth: int = 0) -> list[str]:
    """The program(s) an argv expression starts with, where the code says so."""
    if depth > 5:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value.split("/")[-1]] if node.value and " " not in node.value else []
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        first = node.elts[0]
        if isinstance(first, ast.Starred):
            return _program(first.value, names, depth + 1)
        return _program(first, names, depth + 1)
    if isinstance(node, ast.Name) and node.id in names:
        return _program(names[node.id], names, depth + 1)
    if isinstance(node, ast.IfExp):
        return _program(node.body, names, depth + 1) + _program(node.orelse, names, depth + 1)
    if isinstance(node, ast.BinOp):
        return _program(node.left, names, depth + 1)
    if isinstance(node, ast.Call) and f"{_called(node)}()" in names:  # a helper returning argv
        return _program(names[f"{_called(node)}()"], names, depth + 1)
    return []


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _run_by(call: ast.Call) -> ast.AST | None:
    """The argv of a call that runs a program, else None."""
    name = _called(call)
    module = getattr(call.func, "value", None)
    if name in SUBPROCESS_CALLS and getattr(module, "id", "") == "subprocess" and call.args:
        return call.args[0]
    if name == "which" and call.args:
        return call.args[0]
    if name == "sh" and call.args:  # sandbox/init.py: sh("mount", ...)
        return ast.List(elts=list(call.args))
    return None


def python_programs() -> dict[str, list[str]]:
    """program -> where (path:line) it is run."""
    found: dict[str, list[str]] = {}
    for path in python_files():
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        returned = {
            f"{f.name}()": r.value
            for f in functions
            for r in ast.walk(f)
            if isinstance(r, ast.Return) and r.value is not None
        }
        for scope in [tree, *functions]:
            names: dict[str, ast.AST] = dict(returned)
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    names.setdefault(node.targets[0].id, node.value)
            for node in ast.walk(scope):
                argv = _run_by(node) if isinstance(node, ast.Call) else None
                for program in _program(argv, names) if argv is not None else []:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(program, [])
                    if where not in found[program]:
                        found[program].append(where)
    return found


COMMAND_START = re.compile(
    r"(?:^|&&|\|\||;|\||\$\(|(?<![=+])\(|\bthen\b|\bdo\b|\bexec\b|\belse\b)\s*"
)
WORD = re.compile(r"([A-Za-z_][\w.+-]*)(?=\s|$|\))")


def shell_programs(paths: list[Path]) -> dict[str, list[str]]:
    """program -> where: each command word of these bash scripts (comments and strings aside)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", '""', line.split(" #")[0])
            if code.lstrip().startswith("#"):
                continue
            asked = re.findall(r"command -v ([\w.+-]+)", code)
            for start in COMMAND_START.finditer(code):
                rest = code[start.end() :]
                rest = re.sub(r"^(?:[A-Z_]+=\S*\s+)+", "", rest)  # VAR=value before a command
                match = WORD.match(rest)
                if match and "=" not in match.group(1):
                    asked.append(match.group(1))
            for program in asked:
                if program in SHELL_WORDS:
                    continue
                found.setdefault(program, []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def scripts() -> list[Path]:
    return sorted(p for p in (ROOT / "scripts").iterdir() if p.is_file()) + [ROOT / ".ci/run"]
