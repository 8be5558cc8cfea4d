"""The docs site's reference pages are generated from the code: every schema field and every
command and flag appears in them, so the reference cannot drift from what sealer reads."""

from __future__ import annotations

import json
import re

import schemas
from sealer_cli import reference
from sealer_cli.parser import HELP, build_parser


def _property_names(node, found: set[str]) -> set[str]:
    """Every key under any `properties` of a schema, at any depth (written independently of the
    generator's walk)."""
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            found.add(name)
            _property_names(child, found)
        for key, child in node.items():
            if key != "properties":
                _property_names(child, found)
    elif isinstance(node, list):
        for child in node:
            _property_names(child, found)
    return found


def test_every_schema_field_has_a_section_with_its_facts():
    page = reference.clusterfile_page()
    headings = re.findall(r"^### `([^`]+)`$", page, re.M)
    shown = {h.rsplit(".", 1)[-1].removesuffix("[]") for h in headings}
    for file in sorted(set(schemas.SCHEMA_FILES.values())):
        schema = json.loads((schemas.HERE / file).read_text())
        missing = _property_names(schema, set()) - shown
        assert not missing, f"{file}: fields missing from the reference: {sorted(missing)}"


REFUSED = {"spec.cmd_args", "spec.cmd_args[]"}  # in the schema to be refused by name


def test_every_schema_is_a_valid_json_schema():
    """sealer loads them unchecked (schemas/__init__.py): they are checked here."""
    from jsonschema import Draft202012Validator

    for file in sorted(set(schemas.SCHEMA_FILES.values())):
        Draft202012Validator.check_schema(json.loads((schemas.HERE / file).read_text()))


def test_every_field_is_described_with_an_example():
    """A field added to a schema without its words fails here, not in a reader's hands."""
    for file in sorted(set(schemas.SCHEMA_FILES.values())):
        schema = json.loads((schemas.HERE / file).read_text())
        for field in reference.fields(schema):
            assert field.schema.get("description"), f"{file}: {field.path} has no description"
            composite = field.schema.get("type") in ("object", None) or field.path.endswith("[]")
            if not composite and field.path not in REFUSED:
                assert field.schema.get("examples"), f"{file}: {field.path} has no example"


def test_a_field_shows_type_default_allowed_values_and_example():
    page = reference.clusterfile_page()
    section = page.split("### `spec.dataRoot`", 1)[1].split("###", 1)[0]
    assert "*string* · optional · default `/var/lib/sealer/data`" in section
    assert "Allowed: not empty." in section
    assert "dataRoot: /data/sealer" in section
    strategy = page.split("### `spec.strategy`", 1)[1].split("###", 1)[0]
    assert "one of `merge`, `overwrite`" in strategy


def test_every_command_and_flag_appears():
    page = reference.cli_page()
    for command in HELP:
        assert f"## `sealer {command}`" in page, command
    parser = build_parser()
    for command in reference.commands(parser):
        section = page.split(f"## `{command.prog}`", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in section, f"{command.prog}: {flag}"
    assert "usage: sealer plan" in page and "sealer plan -f Clusterfile --detailed-exitcode" in page
