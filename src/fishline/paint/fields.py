"""Whole multi-nucleus FISH fields with instance masks and per-nucleus truth.

How a field is laid out is a :class:`FieldSettings` (config block ``fish.fields``; every
default the schema's, what each key means: config/README.md); the signals in its nuclei and
the optics are the FISH painter's (``fish.paint``)::

    fields = replace(FieldSettings(), n=2, size=256, nuclei=(6, 9))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_image
from fishline.logging import get_logger, progress_bar
from fishline.paint.draws import bounds, integers, uniform
from fishline.paint.fish import CHANNELS, render_patches
from fishline.paint.fish_settings import FishPaintSettings
from fishline.paint.nuclei import NucleusLibrary
from fishline.paint.optics import apply_optics, quantise
from fishline.schema import deep_merge, setting_default, typed_settings

log = get_logger("paint.fields")


def _schema(key: str) -> Any:
    """The field default of ``fish.fields.<key>`` (:func:`setting_default`)."""
    return setting_default(f"fish.fields.{key}")


@dataclass(frozen=True)
class Clumps:
    """Clumps of touching nuclei per field: how many, and how many nuclei each."""

    count: int | tuple[int, int] = _schema("clumps.count")
    size: int | tuple[int, int] = _schema("clumps.size")


@dataclass(frozen=True)
class Condensed:
    """Condensed (mitotic or apoptotic) nuclei: share, size factor, brightness factor."""

    fraction: float = _schema("condensed.fraction")
    size: float | tuple[float, float] = _schema("condensed.size")
    brightness: float | tuple[float, float] = _schema("condensed.brightness")


@dataclass(frozen=True)
class Defocus:
    """Out-of-focus nuclei: share, and blur sigma as a fraction of the diameter."""

    fraction: float = _schema("defocus.fraction")
    sigma: float | tuple[float, float] = _schema("defocus.sigma")


@dataclass(frozen=True)
class FieldSettings:
    """What a painted field holds (``fish.fields``): its size, nuclei, crowding, clumps,
    brightness spread, condensed and out-of-focus nuclei, tumour purity, and optionally
    optics that differ from the FISH painter's (``realism``, merged over them).

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(FieldSettings(), n=2).n
    2
    """

    n: int = _schema("n")
    size: int = _schema("size")
    nuclei: int | tuple[int, int] = _schema("nuclei")
    clumping: float = _schema("clumping")
    max_overlap: float = _schema("max_overlap")
    clumps: Clumps = field(default_factory=Clumps)
    brightness: float = _schema("brightness")
    condensed: Condensed = field(default_factory=Condensed)
    defocus: Defocus = field(default_factory=Defocus)
    purity: float = _schema("purity")
    realism: Mapping[str, Mapping[str, Any]] | None = None

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> FieldSettings:
        """The settings of a ``fish.fields`` block with every key given (as the validated
        config has it; ``realism`` only where set); a missing or unknown key is an
        InputError naming it."""
        return typed_settings(cls, block, "fish.fields")


def _fits(
    candidate: np.ndarray,
    index: int,
    placed: list[int],
    centres: list[np.ndarray],
    radius: np.ndarray,
    size: int,
    max_overlap: float,
) -> bool:
    if not (0 <= candidate[0] < size and 0 <= candidate[1] < size):
        return False
    others = np.asarray(centres).reshape(-1, 2)
    distance = np.hypot(*(others - candidate).T)
    limit = (radius[index] + radius[placed]) * (1 - max_overlap)
    return bool(np.all(distance >= limit - 1e-6))


def _place(
    rng: np.random.Generator, size: int, radius: np.ndarray, fields: FieldSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Centres for the nuclei of ``radius`` that fit, overlapping at most ``max_overlap``:
    first the clumps (each nucleus against one of its own clump), then the rest, some
    touching another. Returns the centres and the indices of the nuclei placed."""
    count, overlap = len(radius), fields.max_overlap
    clumps = integers(rng, fields.clumps.size, int(integers(rng, fields.clumps.count, 1)[0]))
    clump_of = np.full(count, -1)
    clump_of[: min(int(clumps.sum()), count)] = np.repeat(np.arange(len(clumps)), clumps)[:count]
    centres: list[np.ndarray] = []
    placed: list[int] = []
    for index in range(count):
        own = [k for k, other in enumerate(placed) if clump_of[other] == clump_of[index]]
        clumped = clump_of[index] >= 0 and own
        loose_touch = clump_of[index] < 0 and placed
        for _ in range(200):
            if clumped or (loose_touch and rng.random() < fields.clumping):
                anchor = int(rng.choice(own)) if clumped else int(rng.integers(len(placed)))
                angle = rng.uniform(0, 2 * math.pi)
                gap = (radius[index] + radius[placed[anchor]]) * (1 - rng.uniform(0, overlap))
                candidate = centres[anchor] + gap * np.array([math.cos(angle), math.sin(angle)])
            else:
                candidate = rng.uniform(0, size, 2)
            if _fits(candidate, index, placed, centres, radius, size, overlap):
                centres.append(candidate)
                placed.append(index)
                break
        else:
            if clump_of[index] < 0:
                break  # the field is full
    return np.asarray(centres).reshape(-1, 2), np.asarray(placed, dtype=int)


def paint_field(
    rng: np.random.Generator,
    paint: FishPaintSettings,
    fields: FieldSettings,
    status: int,
    library: NucleusLibrary | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """One field: (3 x S x S image, S x S instance labels, one row per nucleus).

    Nuclei of the field's ``status`` class make up ``purity`` of the field, the rest are of
    the first class (``normal`` by default), as in a tumour sample with normal cells among
    it: a normal sample holds no gained or amplified nuclei.
    """
    size, patch = fields.size, paint.patch_size
    realism = deep_merge(paint.realism, dict(fields.realism or {}))
    number = int(integers(rng, fields.nuclei, 1)[0])
    classes = np.array([c.class_ for c in paint.conditions])
    status_name = paint.classes[status]
    same = np.flatnonzero(classes == status_name)
    normal = np.flatnonzero(classes == paint.classes[0])
    pure = rng.random(number) < fields.purity
    cond = np.where(
        pure, rng.choice(same, number), rng.choice(normal if len(normal) else same, number)
    )
    # Per-nucleus patches carry signals only; the field gets optics once, as a whole.
    quiet = {
        key: {**value, "enabled": key == "dim_reference" and value["enabled"]}
        for key, value in realism.items()
    }
    quiet["saturation"]["enabled"] = True
    quiet["saturation"]["exposure"] = 1.0
    patches, masks, record = render_patches(rng, replace(paint, realism=quiet), cond, library)
    condensed, shrink = _condense(rng, patches, masks, fields)
    record["nucleus_diameter"] = np.round(np.asarray(record["nucleus_diameter"]) * shrink, 2)
    # Placed by their drawn size, so touching nuclei touch; those that do not fit are dropped.
    centres, placed = _place(rng, size, np.asarray(record["nucleus_diameter"]) / 2, fields)
    number = len(placed)
    patches, masks = patches[placed], masks[placed]
    table = pd.DataFrame(record).drop(columns=[c for c in record if c.endswith(("_x", "_y"))])
    table = table.iloc[placed].reset_index(drop=True)
    table["condensed"] = condensed[placed]
    table["brightness"] = np.exp(fields.brightness * rng.standard_normal(number))
    patches[:, 2] *= table["brightness"].to_numpy(np.float32)[:, None, None]
    table["defocus_sigma"] = _defocus(rng, patches, table["nucleus_diameter"].to_numpy(), fields)

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
        # A nucleus covers those below it; its soft rim and defocus halo add light around it.
        dapi = patches[index, 2, pys, pxs]
        image[0, 2, ys, xs] = np.where(own, dapi, np.maximum(image[0, 2, ys, xs], dapi))
    for index in range(number):
        ys, xs, pys, pxs = _overlap(corners[index], patch, size)
        visible = labels[ys, xs] == index + 1
        image[0, :2, ys, xs] += patches[index, :2, pys, pxs] * visible
    optics = apply_optics(rng, image, labels[None] > 0, realism, paint.warp)

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
    return quantise(image[0], paint.bit_depth), labels, table[table["visible_area"] > 0]


def _condense(
    rng: np.random.Generator, patches: np.ndarray, masks: np.ndarray, fields: FieldSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink and brighten the nuclei drawn condensed (mitotic or apoptotic cells: small,
    compact and several times brighter than their neighbours), patch and mask in place, about
    the patch centre. Returns which nuclei were condensed and each one's size factor."""
    knob = fields.condensed
    scale = np.ones(len(patches))
    condensed = np.zeros(len(patches), bool)
    if knob.fraction == 0:
        return condensed, scale
    condensed = rng.random(len(patches)) < knob.fraction
    chosen = np.flatnonzero(condensed)
    scale[chosen] = uniform(rng, knob.size, len(chosen))
    gain = uniform(rng, knob.brightness, len(chosen))
    centre = (patches.shape[-1] - 1) / 2
    for index, factor in zip(chosen, gain, strict=True):
        zoom = cv2.getRotationMatrix2D((centre, centre), 0.0, scale[index])
        shape = patches.shape[-2:][::-1]
        for channel in range(patches.shape[1]):
            patches[index, channel] = cv2.warpAffine(
                patches[index, channel], zoom, shape, flags=cv2.INTER_LINEAR
            )
        patches[index, 2] *= factor
        masks[index] = cv2.warpAffine(
            masks[index].astype(np.uint8), zoom, shape, flags=cv2.INTER_NEAREST
        ).astype(bool)
    return condensed, scale


def _defocus(
    rng: np.random.Generator, patches: np.ndarray, diameters: np.ndarray, fields: FieldSettings
) -> np.ndarray:
    """Blur the cells drawn out of focus (every channel, in place); their sigmas in px."""
    knob = fields.defocus
    sigma = uniform(rng, knob.sigma, len(patches)) * diameters
    sigma = np.where(rng.random(len(patches)) < knob.fraction, sigma, 0.0)
    for index in np.flatnonzero(sigma > 0):
        for channel in range(patches.shape[1]):
            patches[index, channel] = cv2.GaussianBlur(
                patches[index, channel], (0, 0), sigma[index]
            )
    return np.round(sigma, 2)


def _overlap(corner: np.ndarray, patch: int, size: int) -> tuple[slice, slice, slice, slice]:
    """Slices of the field and of the patch where a patch placed at ``corner`` overlaps."""
    x0, y0 = corner
    ys = slice(max(y0, 0), min(y0 + patch, size))
    xs = slice(max(x0, 0), min(x0 + patch, size))
    pys = slice(ys.start - y0, ys.stop - y0)
    pxs = slice(xs.start - x0, xs.stop - x0)
    return ys, xs, pys, pxs


def check_field_painter(paint: FishPaintSettings) -> None:
    """What painting whole fields needs of the patch painter's settings, checked before any
    field is painted: nuclei that fit a patch, and a condition for every class (field
    statuses cycle through the classes)."""
    if bounds(paint.nuclei["diameter"])[1] > paint.patch_size:
        raise InputError("config", "nucleus diameter exceeds patch_size", item="fish.paint.nuclei")
    painted = {condition.class_ for condition in paint.conditions}
    if missing := [name for name in paint.classes if name not in painted]:
        raise InputError(
            "config",
            f"field statuses cycle through the classes, but no condition paints {missing}",
            item="fish.paint.conditions",
        )


def paint_fields(
    paint: FishPaintSettings,
    fields: FieldSettings,
    seed: int,
    outdir: str | Path,
    sheet: str | Path,
    nuclei_table: str | Path,
) -> pd.DataFrame:
    """Paint ``fields.n`` fields: images + masks in ``outdir``, a sample sheet, a nucleus table.

    Field statuses cycle through the classes so every class has whole-field examples.
    """
    check_field_painter(paint)
    library = None
    if paint.nuclei["source"] == "library":
        library = NucleusLibrary.from_sheet(paint.nuclei["library"])
    outdir = Path(outdir)
    names = [f"field_{i:03d}" for i in range(fields.n)]
    paths = [p for name in names for p in (outdir / f"{name}.tif", outdir / f"{name}.mask.tif")]
    rows, tables = [], []
    with atomic_outputs(*paths, sheet, nuclei_table) as temps:
        for index, name in enumerate(progress_bar(names, desc="paint fields", unit="field")):
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            status = index % len(paint.classes)
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
                    "target": CHANNELS.index(paint.probes.target),
                    "reference": CHANNELS.index(paint.probes.reference),
                    "status": paint.classes[status],
                }
            )
            log.info("%s: %d nuclei, status %s", name, len(table), paint.classes[status])
        pd.DataFrame(rows).to_csv(temps[-2], sep="\t", index=False)
        nuclei = pd.concat(tables, ignore_index=True)
        nuclei.to_parquet(temps[-1], index=False)
    return nuclei
