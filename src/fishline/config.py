"""Config and sample-sheet validation against the JSON Schemas shipped with the package.

Errors name the key (``fish.paint.spot_sigma``) or the sheet row and column, suggest the
closest valid key for a typo, and are raised before any job runs.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from fishline.errors import InputError
from fishline.images import PATH_SEPARATOR, split_paths

SCHEMA_PACKAGE = "fishline.schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.yaml`` from the package's schema folder (with libyaml's safe
    loader where PyYAML has it: the config schema is parsed at every workflow start)."""
    text = resources.files(SCHEMA_PACKAGE).joinpath(f"{name}.schema.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema_path(name: str) -> Path:
    """Filesystem path of a schema (for Snakemake's ``validate``)."""
    return Path(str(resources.files(SCHEMA_PACKAGE).joinpath(f"{name}.schema.yaml")))


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


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Merge a local ``$ref`` target with the referencing schema's own keywords."""
    if "$ref" not in schema:
        return schema
    target: Any = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _fill_defaults(schema: Mapping[str, Any], instance: Any, root: Mapping[str, Any]) -> None:
    """Insert schema defaults for missing keys, recursing into nested objects.

    Sub-schemas marked ``x-no-defaults`` (partial overrides such as a split's realism
    changes) are left as the user wrote them.
    """
    schema = _resolve(schema, root)
    if schema.get("x-no-defaults"):
        return
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(schema["items"], item, root)
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
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

    Raises :class:`InputError` naming ``where`` (a file) and the offending key.
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


def _sorted(value: Any) -> Any:
    """Sort mapping keys recursively: reordering keys in a config file must not count as a
    change of settings (Snakemake compares ``params`` values when deciding reruns)."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config (plus optional overrides), validate it and fill defaults."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InputError(str(path), f"cannot read config: {error}") from error
    if overrides:
        data = deep_merge(data, overrides)
    return validate(data, "config", str(path))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, rest replace)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _coerce(value: str, kind: str | list[str] | None) -> Any:
    kinds = kind if isinstance(kind, list) else [kind]
    for candidate in kinds:
        try:
            if candidate == "integer":
                number = float(value)  # "12.0" from a spreadsheet is the integer 12
                if number.is_integer():
                    return int(number)
                continue
            if candidate == "number":
                return float(value)
            if candidate == "boolean" and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
                return value.lower() in {"true", "1", "yes"}
        except ValueError:
            continue
    return value


def read_sample_sheet(path: str | Path, schema_name: str) -> pd.DataFrame:
    """Read a TSV sample sheet, validate every row and resolve its file columns.

    Relative paths in columns the schema marks ``x-path`` are resolved against the sheet's
    own folder, so a sheet and its images can move together. Errors name sheet, row, column.
    """
    path = Path(path)
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(str(path), f"cannot read sample sheet: {error}") from error
    schema = load_schema(schema_name)
    columns = schema["properties"]
    rows = []
    for number, raw in enumerate(sheet.to_dict("records"), start=2):
        row = {k: _coerce(v, columns.get(k, {}).get("type")) for k, v in raw.items() if v != ""}
        try:
            row = validate(row, schema_name, str(path))
        except InputError as error:
            raise InputError(
                str(path), error.problem, item=f"row {number}, {error.item}"
            ) from error
        for column, spec in columns.items():
            if spec.get("x-path") and column in row:
                resolved = [(path.parent / part).resolve() for part in split_paths(row[column])]
                for file in resolved:
                    if not file.is_file():
                        raise InputError(
                            str(path), f"file not found: {file}", item=f"row {number}, {column}"
                        )
                row[column] = PATH_SEPARATOR.join(str(file) for file in resolved)
        rows.append(row)
    if not rows:
        raise InputError(str(path), "sample sheet has no rows")
    frame = pd.DataFrame(rows)
    unique = schema.get("x-unique")
    if unique and frame[unique].duplicated().any():
        duplicate = frame.loc[frame[unique].duplicated(), unique].iloc[0]
        raise InputError(str(path), f"duplicate {unique} '{duplicate}'", item=unique)
    return frame
