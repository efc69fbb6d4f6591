"""Painted GFP translocation assay fields for SimSearch (channels dna, gfp).

Each cell is a textured, round-ish nucleus inside an irregular cytoplasm. Its GFP sits in
the nucleus (class ``nuclear``), in the cytoplasm with a dark nucleus (``cytoplasmic``), or
is missing (``absent``). Cells touch and clump; intensities vary per cell; the field gets a
background offset, blur and camera noise. Truth is the nucleus centre of every cell.

Keys of the cell-field settings (ranges are [low, high], drawn uniformly):
images: number of fields; size: [height, width] px; cells: cells per field (integer range);
nucleus_radius: mean nucleus radius px; nucleus_aspect: minor/major axis ratio (1 = round);
cytoplasm_scale: cytoplasm radius / nucleus radius; cytoplasm_wobble: relative amplitude of
the cytoplasm outline's low-order harmonics; classes: class -> weight (nuclear, cytoplasmic,
absent); touching: probability that a cell is placed against an earlier one (clumps);
dna_intensity, gfp_intensity: per-cell peak levels (0-1 of full scale); gfp_leak: the
fraction of a cell's GFP left in its other compartment (cytoplasm of a nuclear cell,
nucleus of a cytoplasmic cell); texture: relative amplitude of the chromatin / cytoplasm
texture; background: per-field offset; blur_sigma: optical blur px; photons: photons at full
scale (shot noise); read_noise: camera read-noise sigma (fraction of full scale).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_image
from fishline.logging import progress_bar
from fishline.paint.draws import uniform
from fishline.paint.noise import band_noise
from fishline.paint.optics import add_camera_noise, quantise
from fishline.schema import default
from fishline.seeds import stage_seed

CHANNELS = ("dna", "gfp")
CLASSES = ("nuclear", "cytoplasmic", "absent")

# the demo painter's settings as the schema defines them (simsearch.paint)
DEFAULT_CELL_FIELDS: dict[str, Any] = default("simsearch.paint")


def check_cell_settings(settings: dict[str, Any]) -> None:
    """Fail early, naming the key, on missing keys or impossible values."""
    missing = [key for key in DEFAULT_CELL_FIELDS if key not in settings]
    if missing:
        raise InputError("cell fields", f"missing setting(s) {missing}")
    unknown = [key for key in settings if key not in DEFAULT_CELL_FIELDS]
    if unknown:
        raise InputError("cell fields", f"unknown setting(s) {unknown}")
    for key in ("size", "cells", "nucleus_radius", "cytoplasm_scale"):
        low, high = settings[key]
        if not 0 < low <= high:
            raise InputError("cell fields", f"needs 0 < low <= high, got {[low, high]}", item=key)
    if settings["images"] < 1:
        raise InputError("cell fields", "needs at least one image", item="images")
    weights = settings["classes"]
    bad = [name for name in weights if name not in CLASSES]
    if bad or not weights or sum(weights.values()) <= 0:
        raise InputError(
            "cell fields",
            f"classes must weigh some of {list(CLASSES)}, got {weights}",
            item="classes",
        )


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
    rng: np.random.Generator, settings: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """One noise-free field: (2 x H x W float32 image, nucleus labels, cell labels (H x W
    int32, 0 = none, row i of the table = label i + 1), one row per cell [x, y, class, ...]).
    (Over 80 lines: placing the cells, painting nucleus and GFP by class and the labels
    share one generator and read top to bottom.)"""
    height, width = (int(v) for v in settings["size"])
    low, high = (int(v) for v in settings["cells"])
    count = int(rng.integers(low, high + 1))
    nucleus = uniform(rng, settings["nucleus_radius"], count)
    scale = uniform(rng, settings["cytoplasm_scale"], count)
    outer = nucleus * scale * (1 + settings["cytoplasm_wobble"])
    centres = _place(rng, count, (height, width), outer, settings["touching"])
    count = len(centres)
    nucleus, scale = nucleus[:count], scale[:count]
    names = list(settings["classes"])
    weights = np.asarray([settings["classes"][name] for name in names], dtype=np.float64)
    classes = [names[i] for i in rng.choice(len(names), count, p=weights / weights.sum())]
    aspect = uniform(rng, settings["nucleus_aspect"], count)
    tilt = rng.uniform(0, math.pi, count)
    dna_level = uniform(rng, settings["dna_intensity"], count)
    gfp_level = uniform(rng, settings["gfp_intensity"], count)
    leak = uniform(rng, settings["gfp_leak"], count)

    # normalised distance (< 1 inside) of each pixel near a cell to its cytoplasm outline;
    # overlapping cytoplasms go to the cell whose outline the pixel is deepest inside
    cyto_depth = np.full((height, width), np.inf, dtype=np.float32)
    cells = np.zeros((height, width), dtype=np.int32)
    nuclei = np.zeros((height, width), dtype=np.int32)
    for index, (cx, cy) in enumerate(centres):
        box, dx, dy = _window(cx, cy, outer[index], height, width)
        theta = np.arctan2(dy, dx)
        amplitudes, phases = _outline(
            rng, nucleus[index] * scale[index], settings["cytoplasm_wobble"]
        )
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

    texture = settings["texture"]
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
    sigma = float(uniform(rng, settings["blur_sigma"], 1)[0])
    for channel in range(2):
        image[channel] = cv2.GaussianBlur(
            image[channel], (0, 0), sigma, borderType=cv2.BORDER_REFLECT
        )
    image += float(uniform(rng, settings["background"], 1)[0])
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


def paint_cell_fields(settings: dict[str, Any], seed: int, out_dir: str | Path) -> pd.DataFrame:
    """Paint ``settings['images']`` fields into ``out_dir`` (images/, points/, sheet.tsv).

    Images are 2 x H x W uint16 TIFFs (channel names dna, gfp in the metadata); points/NAME.csv
    holds the truth (x, y, class = nucleus centres); sheet.tsv is a valid SimSearch sheet with
    relative paths. Every field draws from its own seed (``stage_seed(seed, 'cellfields', i)``),
    so the same seed gives the same bytes. Returns one row per cell (image, cell, x, y, class,
    nucleus_radius, cytoplasm_scale, gfp). The settings keys are described in the module docstring.
    """
    check_cell_settings(settings)
    out = Path(out_dir)
    rows = []
    sheet = []
    for index in progress_bar(range(settings["images"]), desc="cell fields"):
        name = f"field{index:03d}"
        rng = np.random.default_rng(stage_seed(seed, "cellfields", index))
        image, _, _, table = paint_cell_field(rng, settings)
        noisy = image[None].copy()
        knob = {"photons": settings["photons"], "read_noise": settings["read_noise"]}
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
