"""The workflow config: read from YAML (errors name the file, line and column), validated
against the schema with defaults filled in (:mod:`fishline.schema`), and checked across keys
and into the sheets they name (:func:`check`), as the workflow checks it before any job runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fishline.errors import InputError
from fishline.schema import deep_merge, validate
from fishline.sheets import read_sample_sheet


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
    self_training = chromosomes["self_training"]
    if self_training["enabled"] and not chromosomes["real"]:
        yield "chromosomes.self_training", "is enabled but chromosomes.real names no set"
    if set(self_training["sets"]) - set(chromosomes["real"]):
        unknown = sorted(set(self_training["sets"]) - set(chromosomes["real"]))
        yield (
            "chromosomes.self_training.sets",
            f"names {unknown}, which are not in chromosomes.real {sorted(chromosomes['real'])}",
        )
    if "cyclegan" in chromosomes["compare"]["data"] and not chromosomes["cyclegan"]["enabled"]:
        yield (
            "chromosomes.compare.data",
            "names cyclegan, but chromosomes.cyclegan.enabled is false",
        )


def real_sets_with_truth(config: Mapping[str, Any]) -> list[str]:
    """Names of the real metaphase sets (``chromosomes.real``) whose sheets carry truth
    masks; every sheet is validated on the way (an error names the key and the sheet row).

    Parameters
    ----------
    config : Mapping of str to Any
        A workflow config with its defaults filled in (:func:`validate_config`).

    Returns
    -------
    list of str
        Keys of ``chromosomes.real`` whose sheet fills ``mask`` on at least one row, in config
        order.

    Raises
    ------
    InputError
        If a set's sheet fails validation; ``item`` names ``chromosomes.real.<name>`` and the
        row.
    """
    scored = []
    for name, sheet in config["chromosomes"]["real"].items():
        rows = _read_named_sheet(sheet, "metaphase_sheet", f"chromosomes.real.{name}")
        if "mask" in rows and rows["mask"].notna().any():
            scored.append(name)
    return scored


def simsearch_has_truth(config: Mapping[str, Any]) -> bool:
    """Whether SimSearch runs on images with ground-truth points for every image (the
    painted demo always has them; a user's sheet needs a ``points`` file per image).

    Parameters
    ----------
    config : Mapping of str to Any
        A workflow config with its defaults filled in (:func:`validate_config`).

    Returns
    -------
    bool
        False when ``simsearch.enabled`` is false; True when ``simsearch.sheet`` is null (the
        painted demo); else whether every row of that sheet names a ``points`` file.

    Raises
    ------
    InputError
        If ``simsearch.sheet`` fails validation; ``item`` names ``simsearch.sheet``.
    """
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

    Parameters
    ----------
    config : Mapping of str to Any
        A workflow config with its defaults filled in (:func:`validate_config`).
    where : str
        The config file, named in the error.

    Raises
    ------
    InputError
        For the first problem found, naming ``where`` and the key (``item``); a sheet that
        fails validation also raises it, naming the key that names the sheet.
    """
    for key, problem in chain(_cross_key_problems(config), _sheet_problems(config)):
        raise InputError(where, problem, item=key)


def validate_config(data: Any, where: str) -> dict[str, Any]:
    """A workflow config validated against the schema (defaults filled in) and checked
    across keys and sheets (:func:`check`), as the workflow checks it before any job.

    Parameters
    ----------
    data : Any
        The parsed config (a mapping); None counts as an empty config. It is not modified.
    where : str
        The config file, named in errors.

    Returns
    -------
    dict of str to Any
        The config with every default filled in and keys sorted recursively.

    Raises
    ------
    InputError
        If the config breaks the schema or fails :func:`check`; names ``where`` and the key.
    """
    config = validate(data, "config", where)
    check(config, where)
    return config


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is one message naming the file and
    the line and column where parsing stopped (as an editor counts them, from 1).

    Parameters
    ----------
    path : str or pathlib.Path
        The YAML file.

    Returns
    -------
    Any
        The parsed document (None for an empty file).

    Raises
    ------
    InputError
        If the file cannot be read or is not valid YAML (with a hint when tabs indent the
        line).
    """
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
    """Read a YAML config (plus optional overrides) and validate it (``validate_config``).

    Parameters
    ----------
    path : str or pathlib.Path
        The config file; an empty file counts as an empty config.
    overrides : Mapping of str to Any or None, optional
        Settings merged over the file's (:func:`~fishline.schema.deep_merge`) before
        validation; None (default) for none.

    Returns
    -------
    dict of str to Any
        The validated config, defaults filled in, keys sorted recursively.

    Raises
    ------
    InputError
        If the file cannot be read or parsed, or the config is invalid (names the file and
        the key).
    """
    data = read_yaml(path) or {}
    if overrides:
        data = deep_merge(data, overrides)
    return validate_config(data, str(path))
