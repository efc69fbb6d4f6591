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
from itertools import chain
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from fishline.errors import InputError
from fishline.images import PATH_SEPARATOR, read_channels, split_paths

SCHEMA_PACKAGE = "fishline.schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.yaml`` from the package's schema folder (with libyaml's safe
    loader where PyYAML has it: the config schema is parsed at every workflow start)."""
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
    """Merge a local ``$ref`` target with the referencing schema's own keywords."""
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
    defaults from here, so a default is written once, in the schema."""
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


def _cross_key_problems(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, problem) for every setting that names something another key must define."""
    fish, chromosomes, slides = config["fish"], config["chromosomes"], config["slides"]
    splits = list(fish["paint"]["splits"])
    for key, names in (
        ("fish.umap.sets", fish["umap"]["sets"]),
        ("fish.evaluate.test_sets", fish["evaluate"]["test_sets"]),
    ):
        if set(names) - set(splits):
            unknown = sorted(set(names) - set(splits))
            yield key, f"names {unknown}, which are not in fish.paint.splits {splits}"
    if set(fish["evaluate"]["real"]) & set(splits):
        clash = sorted(set(fish["evaluate"]["real"]) & set(splits))
        yield "fish.evaluate.real", f"names {clash} clash with painted splits"
    if fish["ablation"]["enabled"] and fish["ablation"]["model"] not in fish["models"]:
        yield "fish.ablation.model", f"'{fish['ablation']['model']}' is not in fish.models"
    if slides["classifier"] not in fish["models"] and not slides["classifier"].endswith(".pt"):
        yield (
            "slides.classifier",
            f"'{slides['classifier']}' is neither an entry of fish.models nor a .pt file",
        )
    classes = fish["paint"]["classes"]
    for rule in slides["calls"]["rules"]:
        if rule["class"] not in classes:
            yield "slides.calls.rules", f"names class '{rule['class']}', not one of {classes}"
    painted = [
        name for name, count in chromosomes["spreads"].items() if count > 0 or name != "unannotated"
    ]
    if set(chromosomes["real"]) & set(painted):
        clash = sorted(set(chromosomes["real"]) & set(painted))
        yield "chromosomes.real", f"names {clash} clash with painted sets"
    if "cyclegan" in chromosomes["compare"]["data"] and not chromosomes["cyclegan"]["enabled"]:
        yield (
            "chromosomes.compare.data",
            "names cyclegan, but chromosomes.cyclegan.enabled is false",
        )


def real_sets_with_truth(config: Mapping[str, Any]) -> list[str]:
    """Names of the real metaphase sets (``chromosomes.real``) whose sheets carry truth
    masks; every sheet is validated on the way (an error names the key and the sheet row)."""
    scored = []
    for name, sheet in config["chromosomes"]["real"].items():
        rows = _read_named_sheet(sheet, "metaphase_sheet", f"chromosomes.real.{name}")
        if "mask" in rows and rows["mask"].notna().any():
            scored.append(name)
    return scored


def simsearch_has_truth(config: Mapping[str, Any]) -> bool:
    """Whether SimSearch runs on images with ground-truth points for every image (the
    painted demo always has them; a user's sheet needs a ``points`` file per image)."""
    search = config["simsearch"]
    if not search["enabled"]:
        return False
    if search["sheet"] is None:
        return True
    rows = _read_named_sheet(search["sheet"], "simsearch_sheet", "simsearch.sheet")
    return "points" in rows and bool(rows["points"].fillna("").ne("").all())


def _read_named_sheet(sheet: str | Path, schema_name: str, key: str) -> pd.DataFrame:
    """A sample sheet named by config ``key``; its errors also name the key."""
    try:
        return read_sample_sheet(sheet, schema_name)
    except InputError as error:
        item = key if error.item is None else f"{key}: {error.item}"
        raise InputError(error.where, error.problem, item=item) from error


def _sheet_problems(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, problem) for every setting whose sample sheets lack what it needs."""
    curve = config["chromosomes"]["finetune_curve"]
    if curve["enabled"]:
        scored = real_sets_with_truth(config)
        name = curve["set"] or next(iter(scored), None)
        if name not in scored:
            yield (
                "chromosomes.finetune_curve",
                "needs a real set with truth masks in chromosomes.real "
                f"(set: {name}; sets with truth: {scored})",
            )
    search = config["simsearch"]
    if search["enabled"] and search["annotations"] is None and not simsearch_has_truth(config):
        yield (
            "simsearch.annotations",
            "is null (the simulated user) but the images of simsearch.sheet lack ground-truth "
            "points; annotate them with `fishline annotate`",
        )


def check(config: Mapping[str, Any], where: str) -> None:
    """Every check across keys and into the sheets they name, on a config whose defaults
    are filled: a model, split, class or set named in one key must exist in another, and a
    stage that needs truth masks or points must be given sheets that have them. The workflow
    and ``fishline validate`` both call it, so neither accepts what the other refuses.

    Raises :class:`InputError` naming ``where`` and the key for the first problem.
    """
    for key, problem in chain(_cross_key_problems(config), _sheet_problems(config)):
        raise InputError(where, problem, item=key)


def validate_config(data: Any, where: str) -> dict[str, Any]:
    """A workflow config validated against the schema (defaults filled in) and checked
    across keys and sheets (:func:`check`), as the workflow checks it before any job."""
    config = validate(data, "config", where)
    check(config, where)
    return config


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is one message naming the file and
    the line and column where parsing stopped (as an editor counts them, from 1)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(str(path), f"cannot read config file: {error.strerror}") from error
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        if mark is None:
            raise InputError(str(path), f"not valid YAML: {problem}") from error
        line = [*text.splitlines(), ""][mark.line]
        hint = "; indent with spaces, not tabs" if "\t" in line[: mark.column + 1] else ""
        raise InputError(
            str(path),
            f"not valid YAML: {problem} (line {mark.line + 1}, column {mark.column + 1}){hint}",
        ) from error


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config (plus optional overrides) and validate it (``validate_config``)."""
    data = read_yaml(path) or {}
    if overrides:
        data = deep_merge(data, overrides)
    return validate_config(data, str(path))


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


def _row_files(
    row: Mapping[str, Any], columns: Mapping[str, Any]
) -> Iterator[tuple[str, list[str]]]:
    """(column, files) for each column of a sheet row that its schema marks ``x-path``
    (several files joined by ';' are listed one by one)."""
    for column, spec in columns.items():
        value = row.get(column)
        if spec.get("x-path") and isinstance(value, str):
            yield column, split_paths(value)


def sheet_files(frame: pd.DataFrame, schema_name: str) -> list[str]:
    """Every file a read sheet names, each once, in sheet order."""
    columns = load_schema(schema_name)["properties"]
    files: dict[str, None] = {}
    for row in frame.to_dict("records"):
        for _, paths in _row_files(row, columns):
            files.update(dict.fromkeys(paths))
    return list(files)


IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
CHANNEL_COLUMNS = ("dapi", "target", "reference", "red", "green")


def check_sheet_images(frame: pd.DataFrame, schema_name: str, path: str | Path) -> int:
    """Open every image and mask a read sheet (from ``path``) names, as its jobs would a
    minute later: readable (not truncated or empty), a channel axis that can be told apart,
    channel indices within the image's channels, masks of the image's height and width.
    Errors name the sheet, row, column and file. Returns the number of image files opened."""
    columns = load_schema(schema_name)["properties"]
    opened = 0
    for number, row in enumerate(frame.to_dict("records"), start=2):
        shapes: dict[str, tuple[int, ...]] = {}
        for column, paths in _row_files(row, columns):
            files = [f for f in paths if f.lower().endswith(IMAGE_SUFFIXES)]
            if not files:
                continue
            try:
                shapes[column] = read_channels(files).shape
            except InputError as error:
                raise InputError(
                    str(path), f"{error.where}: {error.problem}", item=f"row {number}, {column}"
                ) from error
            opened += len(files)
        image = next((column for column in ("image", "path") if column in shapes), None)
        if image is None:
            continue
        channels, *size = shapes[image]
        named = row.get("channels")
        if isinstance(named, str) and len(named.split(",")) != channels:
            raise InputError(
                str(path),
                f"names {len(named.split(','))} channels ({named}) but {row[image]} has {channels}",
                item=f"row {number}, channels",
            )
        for column in CHANNEL_COLUMNS:
            index = row.get(column)
            if isinstance(index, int) and index >= channels:
                raise InputError(
                    str(path),
                    f"channel {index} requested but {row[image]} has {channels} channel(s)",
                    item=f"row {number}, {column}",
                )
        for column, shape in shapes.items():
            if column != image and list(shape[1:]) != size:
                raise InputError(
                    str(path),
                    f"{row[column]} is {shape[1]} x {shape[2]} px, the image {size[0]} x "
                    f"{size[1]} px",
                    item=f"row {number}, {column}",
                )
    return opened


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
