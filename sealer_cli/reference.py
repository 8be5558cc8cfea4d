"""The docs site's reference pages, generated from the code so they cannot drift from it:
the Clusterfile's fields from the JSON Schemas in schemas/, the commands from the argparse
grammar in sealer_cli/parser.py.

    python -m sealer_cli.reference OUTDIR    # writes OUTDIR/clusterfile.md and OUTDIR/cli.md
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

import schemas
from sealer_cli.parser import build_parser

# The kinds a Clusterfile holds, in the order the page shows them.
KINDS = ("Cluster", "Application", "Plugin", "Config", "InitConfiguration")


@dataclass(frozen=True)
class Field:
    path: str  # spec.hosts[].ssh.port
    schema: dict  # the field's schema, $ref resolved
    required: bool


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return {
            **root["$defs"][ref.split("/")[-1]],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node


def fields(schema: dict) -> Iterator[Field]:
    """Every field of a document's schema, depth first, in the schema's order."""

    def walk(node: dict, prefix: str) -> Iterator[Field]:
        node = _resolve(node, schema)
        required = set(node.get("required", ()))
        for name, child in node.get("properties", {}).items():
            child = _resolve(child, schema)
            path = f"{prefix}.{name}" if prefix else name
            yield Field(path, child, name in required)
            yield from walk(child, path)
            items = child.get("items")
            if isinstance(items, dict):
                yield from walk(items, f"{path}[]")

    yield from walk(schema, "")


def _type(node: dict) -> str:
    if "const" in node:
        return "string"
    if "enum" in node:
        return "string"
    kind = node.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    if kinds == ["array"]:
        items = node.get("items") or {}
        return f"array of {_type(items) if '$ref' not in items else 'object'}"
    return " or ".join(kinds)


def _allowed(node: dict) -> list[str]:
    rules = []
    if "const" in node:
        rules.append(f"exactly `{node['const']}`")
    if "enum" in node:
        rules.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "pattern" in node:
        rules.append(f"matches `{node['pattern']}`")
    if "minLength" in node:
        rules.append("not empty")
    if "minItems" in node:
        rules.append(f"at least {node['minItems']} item(s)")
    if "minimum" in node or "maximum" in node:
        rules.append(f"{node.get('minimum', '…')} to {node.get('maximum', '…')}")
    if node.get("additionalProperties") is False and node.get("properties"):
        rules.append("only the fields below")
    return rules


def _yaml(value) -> str:
    if isinstance(value, str) and "\n" not in value:
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).strip()


def _field_section(field: Field) -> list[str]:
    node = field.schema
    facts = [f"*{_type(node)}*", "required" if field.required else "optional"]
    if "default" in node:
        facts.append(f"default `{_yaml(node['default'])}`")
    lines = [f"### `{field.path}`", "", " · ".join(facts), ""]
    if node.get("description"):
        lines += [node["description"], ""]
    allowed = _allowed(node)
    if allowed:
        lines += ["Allowed: " + "; ".join(allowed) + ".", ""]
    for example in node.get("examples", []):
        lines += ["Example:", "", "```yaml", _example_yaml(field.path, example), "```", ""]
    return lines


def _example_yaml(path: str, example) -> str:
    """The example as it sits in a document: nested under the field's last key."""
    key = path.rsplit(".", 1)[-1].removesuffix("[]")
    value = [example] if path.endswith("[]") else example
    return yaml.safe_dump({key: value}, sort_keys=False, width=1000).strip()


def clusterfile_page() -> str:
    lines = [
        "# Clusterfile reference",
        "",
        "Generated from the JSON Schemas in `schemas/` (`python -m sealer_cli.reference`):",
        "every field a Clusterfile's documents may hold, its type, default, allowed values and",
        "an example. A Clusterfile is a multi-document YAML file: exactly one `Cluster`, at most",
        "one `Application`, any number of `Plugin` and `Config` documents, and kubeadm documents",
        "for the kubernetes runtime. See [Concepts: Clusterfile](../concepts/clusterfile.md).",
        "",
    ]
    for kind in KINDS:
        schema = json.loads((schemas.HERE / schemas.SCHEMA_FILES[kind]).read_text())
        title = schema.get("title", kind)
        if kind == "InitConfiguration":
            title = "kubeadm documents: " + ", ".join(schemas.KUBEADM_KINDS)
        lines += [f"## {title}", ""]
        if schema.get("description"):
            lines += [schema["description"], ""]
        for field in fields(schema):
            lines += _field_section(field)
    return "\n".join(lines)


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every command's parser (`sealer plan`, `sealer state pull`, ...), depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from commands(sub)


def _flag(action: argparse.Action) -> str:
    names = ", ".join(action.option_strings) or (action.metavar or action.dest)
    if action.option_strings and action.nargs != 0:
        names += f" {action.metavar or action.dest.upper()}"
    return f"`{names}`"


def _option_line(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")  # argparse's escaping
    extra = []
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        extra.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.required and action.option_strings:
        extra.append("required")
    has_default = action.default not in (None, False, [], "", argparse.SUPPRESS)
    if has_default and action.nargs != 0 and "default" not in text:
        extra.append(f"default `{action.default}`")
    suffix = f" ({'; '.join(extra)})" if extra else ""
    return f"- {_flag(action)}: {text}{suffix}".rstrip()


def cli_page(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser()
    lines = [
        "# Command reference",
        "",
        "Generated from sealer's argparse grammar (`sealer_cli/parser.py`): every command, its",
        "arguments and flags, and its examples. `sealer COMMAND --help` prints the same.",
        "",
        "```text",
        parser.format_usage().strip(),
        "```",
        "",
        parser.description.strip(),
        "",
    ]
    for command in commands(parser):
        lines += [f"## `{command.prog}`", ""]
        if command.description:
            lines += [command.description.strip().replace("\n", " "), ""]
        lines += ["```text", command.format_usage().strip(), "```", ""]
        options = [
            a
            for a in command._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        ]
        if options:
            lines += [_option_line(a) for a in options] + [""]
        if command.epilog:
            examples = textwrap.dedent(command.epilog.removeprefix("example:\n"))
            lines += ["Examples:", "", "```sh", examples.rstrip(), "```", ""]
    return "\n".join(lines)


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("clusterfile.md", clusterfile_page()), ("cli.md", cli_page())):
        path = folder / name
        path.write_text(text.rstrip() + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/reference")):
        print(path)
