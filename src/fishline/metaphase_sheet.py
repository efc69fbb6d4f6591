"""Metaphase sample sheets: one row per spread (image files, DAPI and paint channels, optional
truth masks), read without the imaging stack so light jobs and the workflow's parser can use
them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import (
    connected_pieces,
    pick_channel,
    read_channels,
    read_labels,
    split_paths,
)
from fishline.io import atomic_outputs
from fishline.sheets import read_sample_sheet

SHEET_SCHEMA = "metaphase_sheet"


@dataclass
class Metaphase:
    """One row of a metaphase sheet, read: DAPI, the paint channels present, optional truth
    and, for an M-FISH image, its fluor channels (``colours``, C x H x W)."""

    sample: str
    image_path: str
    dapi: np.ndarray
    paint: dict[str, np.ndarray]
    truth: np.ndarray | None
    colours: np.ndarray | None = None

    @property
    def truth_pieces(self) -> np.ndarray | None:
        """The truth for segmentation: each connected piece of a truth instance counts as an
        instance (:func:`~fishline.images.connected_pieces`), so painted chromosomes cut by a
        crossing left out of their masks are trained and scored as real karyotype truth is."""
        return None if self.truth is None else connected_pieces(self.truth)


def sheet_path(path: str | Path, name: str = "sheet.tsv") -> Path:
    """The sample sheet of a set: ``path`` itself, or ``path/name`` for a set's folder."""
    path = Path(path)
    return path / name if path.is_dir() else path


def read_sheet(sheet: str | Path) -> pd.DataFrame:
    """Validate a metaphase sample sheet (rows, columns, files) and return it."""
    return read_sample_sheet(sheet, SHEET_SCHEMA)


def load_row(row: Mapping[str, Any], sheet: str | Path, with_truth: bool = True) -> Metaphase:
    """Read one sheet row's image and (unless ``with_truth`` is false) its truth mask; errors
    name the sheet, sample and column."""
    where = f"{sheet} (sample {row['sample']})"
    try:
        image = read_channels(split_paths(row["image"]))
        dapi = pick_channel(image, int(row["dapi"]), where, "dapi")
        paint = {
            name: pick_channel(image, int(row[name]), where, name)
            for name in ("red", "green")
            if pd.notna(row.get(name))
        }
        colours = None
        if isinstance(row.get("colours"), str):
            colours = np.stack(
                [pick_channel(image, int(i), where, "colours") for i in row["colours"].split(",")]
            )
        truth = None
        if with_truth and isinstance(row.get("mask"), str):
            ignore = row.get("mask_ignore")
            truth = read_labels(
                row["mask"], row["mask_kind"], None if pd.isna(ignore) else int(ignore)
            )
            if truth.shape != dapi.shape:
                raise InputError(
                    where, f"mask is {truth.shape}, image is {dapi.shape}", item="mask"
                )
    except InputError as error:
        if error.where.startswith(str(sheet)):
            raise
        raise InputError(where, f"{error.where}: {error.problem}", item=error.item) from error
    return Metaphase(row["sample"], row["image"], dapi, paint, truth, colours)


def iter_sheet(sheet: str | Path) -> Iterator[Metaphase]:
    """Read the metaphases of a sheet one at a time (memory stays at one image)."""
    for row in read_sheet(sheet).to_dict("records"):
        yield load_row(row, sheet)


def collect_segmentations(
    parts: Sequence[str | Path], outdir: str | Path, masks_sheet: str | Path
) -> pd.DataFrame:
    """Join spreads segmented one per job (folders that ``fishline.segment.segment_sheet``
    wrote with one sample each) into one set folder: their label TIFFs and one masks sheet,
    in order. Light (no torch), as the joining job only copies."""
    outdir = Path(outdir)
    frames = [pd.read_csv(Path(part) / "masks.tsv", sep="\t") for part in parts]
    frame = pd.concat(frames, ignore_index=True)
    paths = [outdir / Path(pred).name for pred in frame["pred"]]
    with atomic_outputs(*paths, masks_sheet) as temps:
        for pred, temp in zip(frame["pred"], temps, strict=False):
            shutil.copyfile(pred, temp)
        frame["pred"] = [str(path.resolve()) for path in paths]
        frame.to_csv(temps[-1], sep="\t", index=False)
    return frame
