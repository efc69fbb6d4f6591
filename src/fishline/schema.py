"""The JSON Schemas shipped with the package (the workflow config and the sample sheets):
loading, ``$ref`` resolution, defaults filled in (a block written in part merges over the
defaults of its place), validation whose errors name the key and suggest the closest valid
one, :func:`default`, the schema's default of one key for library signatures, and
:func:`typed_settings` / :func:`setting_default` / :func:`definition_default`, a config
block as the typed settings dataclass library code takes and the defaults of its fields.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import jsonschema
import yaml

from fishline.errors import InputError

SCHEMA_PACKAGE = "fishline.schemas"
Settings = TypeVar("Settings")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.yaml`` from the package's schema folder (with libyaml's safe
    loader where PyYAML has it: the config schema is parsed at every workflow start).

    Parameters
    ----------
    name : str
        Schema name: ``"config"`` or a sheet's, e.g. ``"metaphase_sheet"``.

    Returns
    -------
    dict of str to Any
        The parsed JSON Schema, ``$ref`` not resolved. Cached per name: every call returns the
        same dict, so callers must not modify it.
    """
    text = resources.files(SCHEMA_PACKAGE).joinpath(f"{name}.schema.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _key_path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """Return (key path, problem) for the most relevant validation error."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - allowed)
        key = unknown[0] if unknown else "?"
        hint = difflib.get_close_matches(key, sorted(allowed), n=1)
        problem = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        problem += f"; allowed: {', '.join(sorted(allowed))}"
        return _key_path([*path, key]), problem
    if error.validator == "required":
        return _key_path(path), error.message
    return _key_path(path), f"{error.message}"


def resolve_ref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Merge a local ``$ref`` target with the referencing schema's own keywords.

    Parameters
    ----------
    schema : Mapping of str to Any
        A (sub-)schema, with or without a local ``$ref`` (``"#/..."``).
    root : Mapping of str to Any
        The whole schema the ``$ref`` path is looked up in.

    Returns
    -------
    Mapping of str to Any
        ``schema`` itself without ``$ref``; else a new dict: the target (resolved in turn)
        updated with ``schema``'s other keywords, which win.
    """
    if "$ref" not in schema:
        return schema
    target: Any = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve_ref(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _named_entries(schema: Mapping[str, Any]) -> bool:
    """Whether a setting is a mapping of named entries (splits, models) with default ones."""
    default = schema.get("default")
    return (
        isinstance(schema.get("additionalProperties"), dict)
        and isinstance(default, dict)
        and bool(default)
        and all(isinstance(entry, dict) for entry in default.values())
    )


def _fill_defaults(schema: Mapping[str, Any], instance: Any, root: Mapping[str, Any]) -> None:
    """Insert schema defaults for missing keys, recursing into nested objects.

    Sub-schemas marked ``x-no-defaults`` (partial overrides such as a split's realism
    changes) are left as the user wrote them.
    """
    schema = resolve_ref(schema, root)
    if schema.get("x-no-defaults"):
        return
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(schema["items"], item, root)
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub = resolve_ref(sub, root)
        default = sub.get("default")
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and default and isinstance(instance.get(key), dict):
            # what the user writes merges over the setting's default block: a config that
            # resizes the train split keeps the other splits, and a partial block keeps the
            # defaults this place gives a shared block (a Cellpose block's epochs); an
            # entry of a mapping of named entries (splits, models) set to null is left out
            merged = deep_merge(default, instance[key])
            if _named_entries(sub):
                merged = {name: entry for name, entry in merged.items() if entry is not None}
            instance[key] = merged
        if key in instance:
            _fill_defaults(sub, instance[key], root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(instance) - set(schema.get("properties", {})):
            _fill_defaults(extra, instance[key], root)


def _ordered(
    validator: Any, ordered: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """The ``x-ordered`` keyword: a two-number range ``[low, high]`` needs low <= high (a
    reversed range would otherwise fail later with an error that names no key)."""
    if (
        ordered
        and isinstance(instance, list)
        and len(instance) == 2
        and all(isinstance(value, int | float) for value in instance)
        and instance[0] > instance[1]
    ):
        yield jsonschema.ValidationError(f"range {instance} is reversed: write it [low, high]")


RangeCheckingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-ordered": _ordered}
)


def validate(instance: Any, schema_name: str, where: str) -> Any:
    """Validate ``instance`` and return a copy with defaults filled in.

    Parameters
    ----------
    instance : Any
        Parsed data (a config mapping or one sheet row as a dict); None counts as ``{}``. It
        is not modified.
    schema_name : str
        The schema to validate against (:func:`load_schema`).
    where : str
        What the data came from (a file), named in the error.

    Returns
    -------
    Any
        A deep copy of ``instance`` with the schema's defaults inserted (a block written in
        part merged over its defaults) and mapping keys sorted recursively.

    Raises
    ------
    InputError
        If the filled copy breaks the schema: names ``where`` and the offending key (dotted
        path, as ``item``), with the closest allowed key for an unknown one.
    """
    schema = load_schema(schema_name)
    filled = copy.deepcopy(instance) if instance is not None else {}
    _fill_defaults(schema, filled, schema)
    validator = RangeCheckingValidator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(filled))
    if error is not None:
        key, problem = _describe(error)
        raise InputError(where, problem, item=key)
    return _sorted(filled)


@cache
def _schema_defaults() -> dict[str, Any]:
    """Every default in the schema's order (a mapping such as the painter's class shares
    keeps the order it is written in)."""
    schema = load_schema("config")
    filled: dict[str, Any] = {}
    _fill_defaults(schema, filled, schema)
    return filled


def default(key: str) -> Any:
    """The schema's default for a dotted config key (a copy), e.g.
    ``default("simsearch.cells.temperature")``: library signatures and the CLI take their
    defaults from here, so a default is written once, in the schema.

    Parameters
    ----------
    key : str
        Dotted config key; a key naming a block gives the whole block with its defaults.

    Returns
    -------
    Any
        A deep copy of the default (scalar, list or dict), safe to modify.

    Raises
    ------
    KeyError
        If the schema has no default for ``key`` (or for a part of it).
    """
    value: Any = _schema_defaults()
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"no config key {key!r} in the schema")
        value = value[part]
    return copy.deepcopy(value)


def _sorted(value: Any) -> Any:
    """Sort mapping keys recursively: reordering keys in a config file must not count as a
    change of settings (Snakemake compares ``params`` values when deciding reruns)."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, rest replace).

    Parameters
    ----------
    base : Mapping of str to Any
        The values to start from; not modified.
    override : Mapping of str to Any
        The values that win; a nested mapping merges key by key into the base's mapping,
        anything else (lists included) replaces the base's value.

    Returns
    -------
    dict of str to Any
        A new dict of deep copies, sharing nothing with either argument.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def typed_settings(
    kind: type[Settings], block: Mapping[str, Any], where: str, ignore: Collection[str] = ()
) -> Settings:
    """The frozen settings dataclass ``kind`` with the values of config ``block``: nested
    dataclasses from nested mappings (a list or mapping of them for ``tuple[Item, ...]`` and
    ``Mapping[str, Item]`` fields), lists as tuples. Every field's key must be in
    ``block`` (a field whose default is None may be left out) and no other but those of
    ``ignore`` (keys of the block that the workflow reads, such as a sheet path): else an
    InputError naming ``where`` and the nested key.
    Library code takes these typed settings; the workflow builds them from its config."""
    items = fields(kind)  # type: ignore[arg-type]
    keys = {item.name: setting_key(item.name) for item in items}
    # a key the schema gives no default (e.g. an optional override) may be left out
    optional = {setting_key(item.name) for item in items if item.default is None}
    missing = sorted(set(keys.values()) - set(block) - optional)
    unknown = sorted(set(block) - set(keys.values()) - set(ignore))
    if missing or unknown:
        raise InputError(where, f"missing key(s) {missing}, unknown key(s) {unknown}")
    hints = typing.get_type_hints(kind)
    values = {}
    for name, key in keys.items():
        if key not in block:
            continue
        value, hint = block[key], hints[name]
        item_kind, entry_kind = _tuple_item(hint), _mapping_entry(hint)
        if is_dataclass(hint):
            value = _nested(hint, value, where, key)
        elif item_kind is not None:
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise InputError(where, "expected a list", item=key)
            value = tuple(
                _nested(item_kind, entry, where, f"{key}[{i}]") for i, entry in enumerate(value)
            )
        elif entry_kind is not None:
            if not isinstance(value, Mapping):
                raise InputError(where, "expected a mapping", item=key)
            value = {
                entry: _nested(entry_kind, spec, where, f"{key}.{entry}")
                for entry, spec in value.items()
            }
        values[name] = _frozen(value)
    return kind(**values)


def _tuple_item(hint: Any) -> type | None:
    """The dataclass of a ``tuple[Item, ...]`` hint, else None."""
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        return arguments[0] if is_dataclass(arguments[0]) else None
    return None


def _mapping_entry(hint: Any) -> type | None:
    """The dataclass of a ``Mapping[str, Entry]`` hint (named entries such as splits), else
    None."""
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is Mapping and len(arguments) == 2:
        return arguments[1] if is_dataclass(arguments[1]) else None
    return None


def _nested(kind: type[Settings], value: Any, where: str, key: str) -> Settings:
    """A nested settings block, its errors naming ``key`` before the nested key."""
    if not isinstance(value, Mapping):
        raise InputError(where, "expected a mapping", item=key)
    try:
        return typed_settings(kind, value, where)
    except InputError as error:
        item = key if error.item is None else f"{key}.{error.item}"
        raise InputError(where, error.problem, item=item) from error


def setting_key(name: str) -> str:
    """The config key of a settings field: the name without the trailing underscore that a
    Python keyword needs (field ``lambda_`` holds key ``lambda``)."""
    return name.removesuffix("_")


def settings_as_config(settings: Any) -> dict[str, Any]:
    """A settings dataclass as its config block (keys as in the config, tuples as lists),
    e.g. for a model file's metadata or a model card."""
    return {
        setting_key(item.name): _as_config(getattr(settings, item.name))
        for item in fields(settings)
    }


def _as_config(value: Any) -> Any:
    """One settings value as the config holds it."""
    if is_dataclass(value):
        return settings_as_config(value)
    if isinstance(value, tuple):
        return [_as_config(entry) for entry in value]
    return value


def setting_default(key: str) -> Any:
    """The schema's default of a dotted config key as a frozen settings dataclass field holds
    it (a list as a tuple), e.g. ``lr: float = setting_default("chromosomes.classifier.lr")``."""
    return _frozen(default(key))


def definition_default(definition: str, key: str) -> Any:
    """The default of property ``key`` of the schema's shared block ``$defs/<definition>`` as
    a frozen settings field holds it, for the fields of an entry of a list or mapping (e.g.
    ``definition_default("condition", "weight")``, one painter condition's share)."""
    properties = load_schema("config")["$defs"][definition]["properties"]
    if "default" not in properties.get(key, {}):
        raise KeyError(f"no default for {key!r} in the schema's $defs/{definition}")
    return _frozen(copy.deepcopy(properties[key]["default"]))


def _frozen(value: Any) -> Any:
    """A config value as a frozen dataclass field holds it: lists become tuples."""
    return tuple(value) if isinstance(value, list) else value
