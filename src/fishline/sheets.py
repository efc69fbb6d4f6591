"""Sample sheets (TSV, one row per image): validated against their schema, every file they
name checked (present, readable, the channels and sizes the columns say), errors naming the
sheet, row and column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fishline.errors import InputError
from fishline.images import PATH_SEPARATOR, read_channels, split_paths
from fishline.schema import load_schema, validate


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
    """Every file a read sheet names, each once, in sheet order.

    Parameters
    ----------
    frame : pandas.DataFrame
        A sheet read by :func:`read_sample_sheet` (file columns resolved).
    schema_name : str
        Its schema, whose ``x-path`` columns hold files.

    Returns
    -------
    list of str
        The paths of those columns, values joined by ';' split into files, first seen first
        (row by row, columns in schema order).
    """
    columns = load_schema(schema_name)["properties"]
    files: dict[str, None] = {}
    for row in frame.to_dict("records"):
        for _, paths in _row_files(row, columns):
            files.update(dict.fromkeys(paths))
    return list(files)


IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
CHANNEL_COLUMNS = ("dapi", "target", "reference", "red", "green", "colours")


def check_sheet_images(frame: pd.DataFrame, schema_name: str, path: str | Path) -> int:
    """Open every image and mask a read sheet (from ``path``) names, as its jobs would a
    minute later: readable (not truncated or empty), a channel axis that can be told apart,
    channel indices within the image's channels, masks of the image's height and width.
    Errors name the sheet, row, column and file.

    Parameters
    ----------
    frame : pandas.DataFrame
        The sheet as :func:`read_sample_sheet` returns it.
    schema_name : str
        Its schema, whose ``x-path`` columns hold files; files ending in .tif, .tiff, .png,
        .jpg or .jpeg are opened.
    path : str or pathlib.Path
        The sheet file, named in errors.

    Returns
    -------
    int
        The number of image files opened, masks included.

    Raises
    ------
    InputError
        If a file cannot be read; ``channels`` names another channel count than the row's
        image (column ``image`` or ``path``) has; a channel index column (``dapi``,
        ``target``, ``reference``, ``red``, ``green``, and each index of ``colours``) is past
        its channels; or another file of the row differs from that image in height or width.
        ``item`` is "row N, column", data rows counted from 2 (the header is row 1).
    """
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
            value = row.get(column)  # an index, or comma-separated indices (colours)
            for index in str(value).split(",") if isinstance(value, int | str) else ():
                if int(index) >= channels:
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

    Parameters
    ----------
    path : str or pathlib.Path
        The tab-separated sheet: a header row, then one row per image; lines starting with '#'
        are comments.
    schema_name : str
        The sheet's schema, e.g. ``"metaphase_sheet"`` or ``"simsearch_sheet"``.

    Returns
    -------
    pandas.DataFrame
        One row per sheet row: values converted to the schema's integer, number or boolean
        types, empty cells given the schema's default (else NaN), ``x-path`` columns as
        absolute paths (several joined by ';').

    Raises
    ------
    InputError
        If the file cannot be read or has no rows, a row breaks the schema, a named file is
        missing, or the schema's ``x-unique`` column repeats a value.
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
