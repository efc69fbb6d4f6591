"""Labelled real single-nucleus images -> a patch set in the painter's geometry, so real test
sets go through exactly the evaluation the synthetic ones do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import pick_channel, read_channels, split_paths
from fishline.io import atomic_outputs, write_unit_stack
from fishline.logging import get_logger
from fishline.paint.fish import CHANNELS
from fishline.sheets import read_sample_sheet

log = get_logger("real_patches")
SHEET_SCHEMA = "patch_sheet"


def read_patch_sheet(sheet: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """Validate a patch sheet; class names outside ``classes`` are an error naming the row."""
    frame = read_sample_sheet(sheet, SHEET_SCHEMA)
    unknown = ~frame["class_name"].isin(classes)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0]) + 2
        name = frame.loc[unknown, "class_name"].iloc[0]
        raise InputError(
            str(sheet),
            f"unknown class '{name}'; known classes: {list(classes)}",
            item=f"row {row}, class_name",
        )
    return frame


def patch_from_row(
    row: Mapping[str, Any], number: int, sheet: str | Path, probes: Mapping[str, str], size: int
) -> np.ndarray:
    """One row's image as a 3 x size x size float32 patch in the painter's channel order."""
    where = f"{sheet} (row {number})"
    image = read_channels(split_paths(row["image"]))
    roles = {"dapi": "dapi", probes["target"]: "target", probes["reference"]: "reference"}
    bits = int(row["bit_depth"]) if pd.notna(row.get("bit_depth")) else 8 * image.itemsize
    top = float((1 << bits) - 1) if image.dtype.kind in "ui" else 1.0
    patch = np.empty((len(CHANNELS), size, size), np.float32)
    for index, name in enumerate(CHANNELS):
        column = roles[name]
        channel = pick_channel(image, int(row[column]), where, column).astype(np.float32)
        patch[index] = cv2.resize(channel / top, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(patch, 0, 1)


def real_patch_set(
    sheet: str | Path,
    classes: Sequence[str],
    probes: Mapping[str, str],
    size: int,
    stack_out: str | Path,
    table_out: str | Path,
) -> pd.DataFrame:
    """Write a sheet's labelled images as a 16-bit patch set (TIFF + Parquet)."""
    frame = read_patch_sheet(sheet, classes)
    patches = np.stack(
        [
            patch_from_row(row, number, sheet, probes, size)
            for number, row in enumerate(frame.to_dict("records"), start=2)
        ]
    )
    table = pd.DataFrame(
        {
            "index": np.arange(len(frame)),
            "id": frame["id"] if "id" in frame else [Path(p).stem for p in frame["image"]],
            "class_name": frame["class_name"],
            "source": frame["image"],
        }
    )
    with atomic_outputs(stack_out, table_out) as (stack_temp, table_temp):
        write_unit_stack(stack_temp, patches, CHANNELS, probes["target"])
        table.to_parquet(table_temp, index=False)
    log.info(
        "%s: %d labelled patches %s",
        sheet,
        len(table),
        table["class_name"].value_counts().to_dict(),
    )
    return table
