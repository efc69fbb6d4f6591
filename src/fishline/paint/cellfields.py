"""Painted GFP translocation assay fields for SimSearch (channels dna, gfp).

Each cell is a textured, round-ish nucleus inside an irregular cytoplasm. Its GFP sits in
the nucleus (class ``nuclear``), in the cytoplasm with a dark nucleus (``cytoplasmic``), or
is missing (``absent``). Cells touch and clump; intensities vary per cell; the field gets a
background offset, blur and camera noise. Truth is the nucleus centre of every cell.

The painter's settings are a :class:`CellFieldSettings` (config block ``simsearch.paint``;
every default the schema's, what each key means: config/README.md)::

    settings = replace(CellFieldSettings(), images=3, size=(192, 192), cells=(7, 9))
    cells = paint_cell_fields(settings, seed=3, out_dir="painted")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_image
from fishline.logging import progress_bar
from fishline.paint.draws import uniform, weighted_names
from fishline.paint.noise import band_noise
from fishline.paint.optics import add_camera_noise, quantise
from fishline.schema import default, setting_default, typed_settings
from fishline.seeds import stage_seed

CHANNELS = ("dna", "gfp")
CLASSES = ("nuclear", "cytoplasmic", "absent")
KEY = "simsearch.paint"


def _schema(key: str) -> Any:
    """The field default of ``simsearch.paint.<key>`` (:func:`setting_default`)."""
    return setting_default(f"{KEY}.{key}")


@dataclass(frozen=True)
class CellFieldSettings:
    """What the cell-field painter draws (``simsearch.paint``); ranges are (low, high),
    drawn uniformly per cell or per field. Impossible values are an InputError naming the
    key.

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(CellFieldSettings(), cells=(7, 9)).cells
    (7, 9)
    """

    images: int = _schema("images")
    size: tuple[int, int] = _schema("size")
    cells: tuple[int, int] = _schema("cells")
    nucleus_radius: tuple[float, float] = _schema("nucleus_radius")
    nucleus_aspect: tuple[float, float] = _schema("nucleus_aspect")
    cytoplasm_scale: tuple[float, float] = _schema("cytoplasm_scale")
    cytoplasm_wobble: float = _schema("cytoplasm_wobble")
    classes: Mapping[str, float] = field(default_factory=lambda: default("simsearch.paint.classes"))
    touching: float = _schema("touching")
    dna_intensity: tuple[float, float] = _schema("dna_intensity")
    gfp_intensity: tuple[float, float] = _schema("gfp_intensity")
    gfp_leak: tuple[float, float] = _schema("gfp_leak")
    texture: float = _schema("texture")
    background: tuple[float, float] = _schema("background")
    blur_sigma: tuple[float, float] = _schema("blur_sigma")
    photons: tuple[float, float] = _schema("photons")
    read_noise: tuple[float, float] = _schema("read_noise")

    def __post_init__(self) -> None:
        for key in ("size", "cells", "nucleus_radius", "cytoplasm_scale"):
            low, high = getattr(self, key)
            if not 0 < low <= high:
                raise InputError(
                    "config", f"needs 0 < low <= high, got {[low, high]}", item=f"{KEY}.{key}"
                )
        if self.images < 1:
            raise InputError("config", "needs at least one image", item=f"{KEY}.images")
        bad = [name for name in self.classes if name not in CLASSES]
        if bad or not self.classes or sum(self.classes.values()) <= 0:
            raise InputError(
                "config",
                f"classes must weigh some of {list(CLASSES)}, got {dict(self.classes)}",
                item=f"{KEY}.classes",
            )

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CellFieldSettings:
        """The settings of a ``simsearch.paint`` block with every key given (as the
        validated config has it); a missing or unknown key is an InputError naming it."""
        return typed_settings(cls, block, KEY)


def _outline(
    rng: np.random.Generator, radius: float, wobble: float
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic amplitudes and phases of an irregular outline r(theta)."""
    amplitudes = wobble * rng.uniform(0.3, 1.0, 3) / np.array([1.0, 1.5, 2.0])
    phases = rng.uniform(0, 2 * math.pi, 3)
    return radius * amplitudes, phases


def _place(
    rng: np.random.Generator, count: int, size: tuple[int, int], outer: np.ndarray, touching: float
) -> np.ndarray:
    """Cell centres (n, 2) as (x, y): cytoplasms may touch and overlap a little, nuclei never."""
    height, width = size
    centres: list[np.ndarray] = []
    radii: list[float] = []
    for index in range(count):
        for _ in range(100):
            if centres and rng.random() < touching:
                anchor = int(rng.integers(len(centres)))
                angle = rng.uniform(0, 2 * math.pi)
                gap = (outer[index] + radii[anchor]) * rng.uniform(0.8, 0.95)
                candidate = centres[anchor] + gap * np.array([math.cos(angle), math.sin(angle)])
            else:
                candidate = rng.uniform([0, 0], [width, height])
            inner = 0.5 * outer[index]
            if not (
                inner <= candidate[0] < width - inner and inner <= candidate[1] < height - inner
            ):
                continue
            if centres:
                distance = np.hypot(*(np.asarray(centres) - candidate).T)
                if np.any(distance < 0.8 * (outer[index] + np.asarray(radii))):
                    continue
            centres.append(candidate)
            radii.append(float(outer[index]))
            break
    return np.asarray(centres).reshape(-1, 2)


def _window(
    cx: float, cy: float, radius: float, height: int, width: int
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """The image window around a circle and its pixels' offsets (dx, dy) from the centre."""
    top, bottom = max(0, int(cy - radius) - 2), min(height, int(cy + radius) + 3)
    left, right = max(0, int(cx - radius) - 2), min(width, int(cx + radius) + 3)
    yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32)
    return (slice(top, bottom), slice(left, right)), xx - cx, yy - cy


def paint_cell_field(
    rng: np.random.Generator, settings: CellFieldSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """One noise-free field: (2 x H x W float32 image, nucleus labels, cell labels (H x W
    int32, 0 = none, row i of the table = label i + 1), one row per cell [x, y, class, ...]).
    (Over 80 lines: placing the cells, painting nucleus and GFP by class and the labels
    share one generator and read top to bottom.)"""
    height, width = (int(v) for v in settings.size)
    low, high = (int(v) for v in settings.cells)
    count = int(rng.integers(low, high + 1))
    nucleus = uniform(rng, settings.nucleus_radius, count)
    scale = uniform(rng, settings.cytoplasm_scale, count)
    outer = nucleus * scale * (1 + settings.cytoplasm_wobble)
    centres = _place(rng, count, (height, width), outer, settings.touching)
    count = len(centres)
    nucleus, scale = nucleus[:count], scale[:count]
    classes = weighted_names(rng, settings.classes, count)
    aspect = uniform(rng, settings.nucleus_aspect, count)
    tilt = rng.uniform(0, math.pi, count)
    dna_level = uniform(rng, settings.dna_intensity, count)
    gfp_level = uniform(rng, settings.gfp_intensity, count)
    leak = uniform(rng, settings.gfp_leak, count)

    # normalised distance (< 1 inside) of each pixel near a cell to its cytoplasm outline;
    # overlapping cytoplasms go to the cell whose outline the pixel is deepest inside
    cyto_depth = np.full((height, width), np.inf, dtype=np.float32)
    cells = np.zeros((height, width), dtype=np.int32)
    nuclei = np.zeros((height, width), dtype=np.int32)
    for index, (cx, cy) in enumerate(centres):
        box, dx, dy = _window(cx, cy, outer[index], height, width)
        theta = np.arctan2(dy, dx)
        amplitudes, phases = _outline(rng, nucleus[index] * scale[index], settings.cytoplasm_wobble)
        outline = nucleus[index] * scale[index] + sum(
            a * np.cos((k + 2) * theta + p)
            for k, (a, p) in enumerate(zip(amplitudes, phases, strict=True))
        )
        depth = np.hypot(dx, dy) / outline
        take = (depth < 1) & (depth < cyto_depth[box])
        cyto_depth[box][take] = depth[take]
        cells[box][take] = index + 1
    for index, (cx, cy) in enumerate(centres):
        cos, sin = math.cos(tilt[index]), math.sin(tilt[index])
        major = nucleus[index] / math.sqrt(aspect[index])
        minor = nucleus[index] * math.sqrt(aspect[index])
        box, dx, dy = _window(cx, cy, major, height, width)
        depth = np.hypot((dx * cos + dy * sin) / major, (-dx * sin + dy * cos) / minor)
        inside = depth < 1
        nuclei[box][inside] = index + 1
        cells[box][inside] = index + 1

    texture = settings.texture
    chromatin = 1 + texture * band_noise(rng, (height, width), 0.08, 0.35)
    granules = 1 + texture * band_noise(rng, (height, width), 0.03, 0.2)
    dna_of = np.concatenate([[0.0], dna_level]).astype(np.float32)
    image = np.zeros((2, height, width), dtype=np.float32)
    image[0] = np.where(nuclei > 0, dna_of[nuclei] * chromatin, 0.0)
    nuclear_gfp = np.zeros(count + 1, dtype=np.float32)
    cytoplasm_gfp = np.zeros(count + 1, dtype=np.float32)
    for index, name in enumerate(classes):
        if name == "nuclear":
            nuclear_gfp[index + 1] = gfp_level[index]
            cytoplasm_gfp[index + 1] = gfp_level[index] * leak[index]
        elif name == "cytoplasmic":
            nuclear_gfp[index + 1] = gfp_level[index] * leak[index]
            cytoplasm_gfp[index + 1] = gfp_level[index] * 0.7
        else:
            nuclear_gfp[index + 1] = cytoplasm_gfp[index + 1] = 0.02 * gfp_level[index]
    in_nucleus = nuclei > 0
    image[1] = np.where(in_nucleus, nuclear_gfp[nuclei], cytoplasm_gfp[cells]) * granules
    image = np.clip(image, 0, None)
    sigma = float(uniform(rng, settings.blur_sigma, 1)[0])
    for channel in range(2):
        image[channel] = cv2.GaussianBlur(
            image[channel], (0, 0), sigma, borderType=cv2.BORDER_REFLECT
        )
    image += float(uniform(rng, settings.background, 1)[0])
    table = pd.DataFrame(
        {
            "cell": np.arange(1, count + 1),
            "x": centres[:, 0].round(2),
            "y": centres[:, 1].round(2),
            "class": classes,
            "nucleus_radius": nucleus.round(2),
            "cytoplasm_scale": scale.round(3),
            "gfp": gfp_level.round(3),
        }
    )
    return image, nuclei, cells, table


def paint_cell_fields(settings: CellFieldSettings, seed: int, out_dir: str | Path) -> pd.DataFrame:
    """Paint ``settings.images`` fields into ``out_dir`` (images/, points/, sheet.tsv).

    Images are 2 x H x W uint16 TIFFs (channel names dna, gfp in the metadata); points/NAME.csv
    holds the truth (x, y, class = nucleus centres); sheet.tsv is a valid SimSearch sheet with
    relative paths. Every field draws from its own seed (``stage_seed(seed, 'cellfields', i)``),
    so the same seed gives the same bytes. Returns one row per cell (image, cell, x, y, class,
    nucleus_radius, cytoplasm_scale, gfp).
    """
    out = Path(out_dir)
    rows = []
    sheet = []
    for index in progress_bar(range(settings.images), desc="cell fields"):
        name = f"field{index:03d}"
        rng = np.random.default_rng(stage_seed(seed, "cellfields", index))
        image, _, _, table = paint_cell_field(rng, settings)
        noisy = image[None].copy()
        knob = {"photons": settings.photons, "read_noise": settings.read_noise}
        add_camera_noise(rng, noisy, knob)
        pixels = quantise(noisy[0], 16)
        image_path = out / "images" / f"{name}.tif"
        points_path = out / "points" / f"{name}.csv"
        with atomic_outputs(image_path, points_path) as (temp_image, temp_points):
            write_image(temp_image, pixels, CHANNELS)
            table[["x", "y", "class"]].to_csv(temp_points, index=False)
        table.insert(0, "image", name)
        rows.append(table)
        sheet.append(
            {
                "image": name,
                "path": f"images/{name}.tif",
                "channels": ",".join(CHANNELS),
                "points": f"points/{name}.csv",
            }
        )
    with atomic_outputs(out / "sheet.tsv") as (temp,):
        pd.DataFrame(sheet).to_csv(temp, sep="\t", index=False)
    return pd.concat(rows, ignore_index=True)
