"""config/README.md, generated from the config schema so every setting is documented where
it is defined: the schema's titled objects become sections (their description a paragraph),
their settings a table of key, default and meaning. ``fishline config-docs`` writes it; a
test fails when the file is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fishline.schema import load_schema, resolve_ref, validate

HEADER = (
    "<!-- Generated from src/fishline/schemas/config.schema.yaml by `fishline config-docs`;"
    " edit the schema, not this file. -->"
)


def _format(value: Any) -> str:
    """A default as a table cell: scalars plain, lists and mappings in YAML flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value or '""'
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, Mapping) and "name" in item for item in value)
    ):
        return "entries " + ", ".join(str(item["name"]) for item in value)
    if isinstance(value, dict) and value and all(isinstance(v, Mapping) for v in value.values()):
        return "entries " + ", ".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": ")).replace('"', "")
    return str(value)


def _cell(text: str) -> str:
    """One line of Markdown table text."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _lookup(defaults: Any, path: list[str]) -> tuple[bool, Any]:
    """(found, value) of ``path`` in the filled default config."""
    node = defaults
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _rows(
    schema: Mapping[str, Any], root: Mapping[str, Any], prefix: str
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(relative key, leaf schema, required) of every setting under an object, flattening
    untitled sub-objects into dotted keys; titled ones are sections of their own."""
    required = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        sub = resolve_ref(sub, root)
        if "title" in sub:
            continue
        if "properties" in sub and not sub.get("x-no-defaults"):
            yield from _rows(sub, root, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", sub, key in required


def _sections(
    schema: Mapping[str, Any], root: Mapping[str, Any], path: list[str]
) -> Iterator[tuple[list[str], Mapping[str, Any]]]:
    """(key path, object schema) of every titled object, depth first, in schema order."""
    for key, sub in schema.get("properties", {}).items():
        sub = resolve_ref(sub, root)
        if "title" in sub:
            yield [*path, key], sub
        items = sub.get("items")
        if isinstance(items, Mapping) and "title" in resolve_ref(items, root):
            yield [*path, f"{key}[]"], resolve_ref(items, root)
        yield from _sections(sub, root, [*path, key])


def _table(
    schema: Mapping[str, Any], root: Mapping[str, Any], path: list[str], defaults: Any
) -> list[str]:
    """The settings table of one section. Keys the default config does not set show ``-``
    (optional) or ``required``; under ``x-docs-defaults-only`` they are left out (the
    augmentation presets: each step sets only its own fields)."""
    lines = []
    for key, leaf, required in _rows(schema, root, ""):
        found, value = _lookup(defaults, [*path, *key.split(".")])
        if not found and "default" in leaf:
            found, value = True, leaf["default"]
        if not found and schema.get("x-docs-defaults-only"):
            continue
        default = _format(value) if found else ("required" if required else "-")
        lines.append(f"| `{key}` | {_cell(default)} | {_cell(leaf.get('description', ''))} |")
    if not lines:
        return []
    return ["| key | default | meaning |", "|---|---|---|", *lines, ""]


def _entries(path: list[str], defaults: Any) -> list[str]:
    """The default entries of a mapping of named entries (splits, models), one row each."""
    found, value = _lookup(defaults, path)
    if not found or not isinstance(value, Mapping) or not value:
        return []
    rows = [f"| `{name}` | {_cell(_format(entry))} |" for name, entry in value.items()]
    return ["| default entry | settings |", "|---|---|", *rows, ""]


def render_config_docs() -> str:
    """The Markdown text of config/README.md from the config schema and its defaults."""
    root = load_schema("config")
    defaults = validate({}, "config", "defaults")
    lines = [HEADER, "", f"# {root['title']}", "", root["description"].strip(), ""]
    top = _table(root, root, [], defaults)
    if top:
        lines += ["## Top level", "", *top]
    for path, node in _sections(root, root, []):
        key = ".".join(path).replace(".[]", "[]")
        level = "##" if len(path) <= 2 else "###"
        lines += [f"{level} `{key}`: {node['title']}", ""]
        if node.get("description"):
            lines += [node["description"].strip(), ""]
        in_items = path[-1].endswith("[]")
        table_path = [] if in_items else path
        lines += _table(node, root, table_path, {} if in_items else defaults)
        if "properties" not in node and not in_items:
            lines += _entries(path, defaults)
    return "\n".join(lines).rstrip() + "\n"
