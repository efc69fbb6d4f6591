"""Whole multi-nucleus FISH fields with instance masks and per-nucleus truth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_image
from fishline.logging import get_logger
from fishline.paint.draws import bounds, integers, uniform
from fishline.paint.fish import CHANNELS, check_settings, render_patches
from fishline.paint.nuclei import NucleusLibrary
from fishline.paint.optics import apply_optics, quantise

log = get_logger("paint.fields")


def _place(
    rng: np.random.Generator, count: int, size: int, radius: np.ndarray, fields: dict[str, Any]
) -> np.ndarray:
    """Centres for ``count`` nuclei: some clumped (touching), overlap at most ``max_overlap``."""
    centres: list[np.ndarray] = []
    for index in range(count):
        for _ in range(200):
            if centres and rng.random() < fields["clumping"]:
                anchor = int(rng.integers(len(centres)))
                angle = rng.uniform(0, 2 * math.pi)
                gap = (radius[index] + radius[anchor]) * (1 - rng.uniform(0, fields["max_overlap"]))
                candidate = centres[anchor] + gap * np.array([math.cos(angle), math.sin(angle)])
            else:
                candidate = rng.uniform(0, size, 2)
            if not (0 <= candidate[0] < size and 0 <= candidate[1] < size):
                continue
            others = np.asarray(centres).reshape(-1, 2)
            distance = np.hypot(*(others - candidate).T)
            limit = (radius[index] + radius[: len(centres)]) * (1 - fields["max_overlap"])
            if np.all(distance >= limit - 1e-6):
                centres.append(candidate)
                break
        else:
            break
    return np.asarray(centres).reshape(-1, 2)


def paint_field(
    rng: np.random.Generator,
    paint: dict[str, Any],
    fields: dict[str, Any],
    status: int,
    library: NucleusLibrary | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """One field: (3 x S x S image, S x S instance labels, one row per nucleus).

    Nuclei of the field's ``status`` class make up ``purity`` of the field, the rest are
    drawn from the other classes, as in a tumour sample with normal cells among it.
    """
    size, patch = fields["size"], paint["patch_size"]
    settings = {**paint, "stain": "fish"}
    realism = settings["realism"]
    number = int(integers(rng, fields["nuclei"], 1)[0])
    radius = uniform(rng, paint["nuclei"]["diameter"], number) / 2
    centres = _place(rng, number, size, radius, fields)
    number = len(centres)
    classes = np.array([c["class"] for c in paint["conditions"]])
    status_name = paint["classes"][status]
    same = np.flatnonzero(classes == status_name)
    other = np.flatnonzero(classes != status_name)
    pure = rng.random(number) < fields["purity"]
    cond = np.where(
        pure, rng.choice(same, number), rng.choice(other if len(other) else same, number)
    )
    # Per-nucleus patches carry signals only; the field gets optics once, as a whole.
    quiet = {
        **settings,
        "realism": {
            key: {**value, "enabled": key == "dim_reference" and value["enabled"]}
            for key, value in realism.items()
        },
    }
    quiet["realism"]["saturation"]["enabled"] = True
    quiet["realism"]["saturation"]["exposure"] = 1.0
    patches, masks, record = render_patches(rng, quiet, cond, library)

    image = np.zeros((1, 3, size, size), np.float32)
    labels = np.zeros((size, size), np.int32)
    half = patch // 2
    corners = np.rint(centres).astype(int) - half
    for index in range(number):
        ys, xs, pys, pxs = _overlap(corners[index], patch, size)
        if ys.stop <= ys.start or xs.stop <= xs.start:
            continue
        own = masks[index, pys, pxs]
        labels[ys, xs][own] = index + 1
        image[0, 2, ys, xs] = np.where(own, patches[index, 2, pys, pxs], image[0, 2, ys, xs])
    for index in range(number):
        ys, xs, pys, pxs = _overlap(corners[index], patch, size)
        visible = labels[ys, xs] == index + 1
        image[0, :2, ys, xs] += patches[index, :2, pys, pxs] * visible
    optics = apply_optics(rng, image, labels[None] > 0, realism, paint["warp"])

    table = pd.DataFrame(record).drop(columns=[c for c in record if c.endswith(("_x", "_y"))])
    table.insert(0, "label", np.arange(1, number + 1))
    table["centre_x"] = np.round(centres[:, 0], 1)
    table["centre_y"] = np.round(centres[:, 1], 1)
    area = np.bincount(labels.ravel(), minlength=number + 1)[1:]
    table["visible_area"] = area
    table["full_area"] = masks.sum(axis=(1, 2))
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    table["touches_border"] = table["label"].isin(edge)
    table["field_status"] = status_name
    for key, value in optics.items():
        table[f"field_{key}"] = float(np.asarray(value).ravel()[0])
    return quantise(image[0], paint["bit_depth"]), labels, table[table["visible_area"] > 0]


def _overlap(corner: np.ndarray, patch: int, size: int) -> tuple[slice, slice, slice, slice]:
    """Slices of the field and of the patch where a patch placed at ``corner`` overlaps."""
    x0, y0 = corner
    ys = slice(max(y0, 0), min(y0 + patch, size))
    xs = slice(max(x0, 0), min(x0 + patch, size))
    pys = slice(ys.start - y0, ys.stop - y0)
    pxs = slice(xs.start - x0, xs.stop - x0)
    return ys, xs, pys, pxs


def paint_fields(
    paint: dict[str, Any],
    fields: dict[str, Any],
    seed: int,
    outdir: str | Path,
    sheet: str | Path,
    nuclei_table: str | Path,
) -> pd.DataFrame:
    """Paint ``fields['n']`` fields: images + masks in ``outdir``, a sample sheet, a nucleus table.

    Field statuses cycle through the classes so every class has whole-field examples.
    """
    check_settings(paint)
    if bounds(paint["nuclei"]["diameter"])[1] > paint["patch_size"]:
        raise InputError("config", "nucleus diameter exceeds patch_size", item="fish.paint.nuclei")
    library = None
    if paint["nuclei"]["source"] == "library":
        library = NucleusLibrary.from_sheet(paint["nuclei"]["library"])
    outdir = Path(outdir)
    names = [f"field_{i:03d}" for i in range(fields["n"])]
    paths = [p for name in names for p in (outdir / f"{name}.tif", outdir / f"{name}.mask.tif")]
    rows, tables = [], []
    with atomic_outputs(*paths, sheet, nuclei_table) as temps:
        for index, name in enumerate(tqdm(names, desc="paint fields", unit="field")):
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            status = index % len(paint["classes"])
            image, labels, table = paint_field(rng, paint, fields, status, library)
            write_image(temps[2 * index], image, CHANNELS)
            write_image(temps[2 * index + 1], labels.astype(np.uint16))
            table.insert(0, "field", name)
            tables.append(table)
            rows.append(
                {
                    "sample": name,
                    "image": f"{name}.tif",
                    "mask": f"{name}.mask.tif",
                    "dapi": CHANNELS.index("dapi"),
                    "target": CHANNELS.index(paint["probes"]["target"]),
                    "reference": CHANNELS.index(paint["probes"]["reference"]),
                    "status": paint["classes"][status],
                }
            )
            log.info("%s: %d nuclei, status %s", name, len(table), paint["classes"][status])
        pd.DataFrame(rows).to_csv(temps[-2], sep="\t", index=False)
        nuclei = pd.concat(tables, ignore_index=True)
        nuclei.to_parquet(temps[-1], index=False)
    return nuclei
