"""Reading the fields of a slide sheet: channels in the painter's order, scaled to [0, 1]
as the classifier was trained, with their truth masks and pixel sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import pick_channel, read_channels, read_labels, split_paths
from fishline.paint.fish import CHANNELS
from fishline.paint.fish_settings import Probes
from fishline.slides.cells import CropIntensity

ROLES = ("dapi", "target", "reference")


@dataclass
class Field:
    """One sheet row, read: channels scaled to [0, 1] in the painter's order, optional truth."""

    sample: str
    field: str
    path: str
    channels: np.ndarray  # 3 x H x W float32: red, green, dapi (the painter's order)
    truth: np.ndarray | None
    pixel_size: float | None


def _full_scale(image: np.ndarray, bit_depth: Any) -> float:
    if image.dtype.kind == "f":
        return 1.0
    bits = int(bit_depth) if pd.notna(bit_depth) else 8 * image.itemsize
    return float((1 << bits) - 1)


def load_field(
    row: Mapping[str, Any],
    sheet: str | Path,
    intensity: CropIntensity,
    probes: Probes,
) -> Field:
    """Read one row's image (and truth mask); every error names the file and the column.

    Channels are scaled by the row's bit depth (``intensity.mode == 'bit_depth'``) or
    stretched per channel between two percentiles (``'percentile'``, for real data whose
    exposure differs from the painter's), and put in the painter's channel order by its
    ``probes`` colours (``target`` and ``reference``: ``red`` or ``green``). A missing
    reference channel stays zero.
    """
    path = row["image"]
    where = f"{sheet} (sample {row['sample']}, field {row['field']}, image {path})"
    image = read_channels(split_paths(path))
    wanted = {role: int(row[role]) for role in ROLES if pd.notna(row.get(role))}
    if image.shape[0] == 1 and len(set(wanted.values())) > 1:
        raise InputError(
            path,
            "grayscale image (1 channel) where separate channels are expected: the sheet "
            f"names {', '.join(f'{k}={v}' for k, v in wanted.items())} "
            f"(sheet {sheet}, sample {row['sample']})",
            item="image",
        )
    top = _full_scale(image, row.get("bit_depth"))
    roles = {
        "dapi": "dapi",
        probes.target: "target",
        probes.reference: "reference",
    }
    channels = np.zeros((len(CHANNELS), *image.shape[1:]), np.float32)
    for index, name in enumerate(CHANNELS):
        role = roles[name]
        if role not in wanted:
            continue
        raw = pick_channel(image, wanted[role], where, role)
        channels[index] = scale_channel(raw, top, intensity)
    truth = None
    if isinstance(row.get("mask"), str):
        truth = read_labels(row["mask"], "instances", None)
        if truth.shape != image.shape[1:]:
            raise InputError(
                row["mask"], f"mask is {truth.shape}, image is {image.shape[1:]}", item="mask"
            )
    pixel = float(row["pixel_size"]) if pd.notna(row.get("pixel_size")) else None
    return Field(str(row["sample"]), str(row["field"]), path, np.clip(channels, 0, 1), truth, pixel)


def scale_channel(raw: np.ndarray, top: float, intensity: CropIntensity) -> np.ndarray:
    """One channel as float32 in the classifier's units: divided by the full scale ``top``
    (``intensity.mode == 'bit_depth'``) or stretched between two percentiles."""
    raw = raw.astype(np.float32)
    if intensity.mode == "percentile":
        low, high = np.percentile(raw, intensity.percentiles)
        return (raw - low) / max(high - low, 1e-6)
    return raw / top
