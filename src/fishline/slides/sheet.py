"""Slide sheets (one row per field of a patient sample), read without the imaging stack so
the workflow can plan one job per sample while it parses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fishline.errors import InputError
from fishline.sheets import read_sample_sheet

SHEET_SCHEMA = "slide_sheet"


def read_slide_sheet(sheet: str | Path) -> pd.DataFrame:
    """Validate a slide sheet; ``field`` defaults to the sample name, (sample, field) unique."""
    frame = read_sample_sheet(sheet, SHEET_SCHEMA)
    if "field" not in frame:
        frame["field"] = frame["sample"]
    frame["field"] = frame["field"].fillna(frame["sample"])
    duplicated = frame.duplicated(["sample", "field"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise InputError(
            str(sheet),
            f"field '{row['field']}' of sample '{row['sample']}' appears twice "
            "(give several fields of one sample distinct names in the field column)",
            item="field",
        )
    return frame


def sheet_samples(sheet: str | Path) -> list[str]:
    """Sample names of a slide sheet in first-seen order (one job per sample)."""
    return list(dict.fromkeys(read_slide_sheet(sheet)["sample"]))
