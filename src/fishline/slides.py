"""MYCN status of whole FISH slides: fields -> Cellpose nuclei -> crops in the classifier's
patch geometry -> per-cell class, probabilities and certainty -> per-sample verdict.

A sample (one patient slide) has one or more fields (rows of a slide sheet). Every function
takes plain values and paths, so tests and tools call it without Snakemake.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.config import default
from fishline.errors import InputError
from fishline.images import pick_channel, read_channels, read_labels, split_paths
from fishline.instances import (
    estimate_nucleus_diameter,
    instance_scores,
    match_instances,
    pooled_scores,
)
from fishline.io import atomic_outputs, write_unit_stack
from fishline.logging import get_logger, progress_bar
from fishline.paint.draws import bounds
from fishline.paint.fish import CHANNELS
from fishline.slide_sheet import read_slide_sheet
from fishline.verdicts import rule_text, verdict

log = get_logger("slides")
ROLES = ("dapi", "target", "reference")
UNKNOWN = "unknown"  # class_name of a cell without truth
MATCH_IOU = 0.5


class NoNucleiWarning(UserWarning):
    """A field (or a whole sample) in which no nucleus was found: outputs are empty."""


@dataclass
class Field:
    """One sheet row, read: channels scaled to [0, 1] in the painter's order, optional truth."""

    sample: str
    field: str
    path: str
    channels: np.ndarray  # 3 x H x W float32: red, green, dapi (the painter's order)
    truth: np.ndarray | None
    pixel_size: float | None


# ---------------------------------------------------------------- sheet and reading


def _full_scale(image: np.ndarray, bit_depth: Any) -> float:
    if image.dtype.kind == "f":
        return 1.0
    bits = int(bit_depth) if pd.notna(bit_depth) else 8 * image.itemsize
    return float((1 << bits) - 1)


def load_field(row: Mapping[str, Any], sheet: str | Path, intensity: Mapping[str, Any]) -> Field:
    """Read one row's image (and truth mask); every error names the file and the column.

    Channels are scaled by the row's bit depth (``intensity['mode'] == 'bit_depth'``) or
    stretched per channel between two percentiles (``'percentile'``, for real data whose
    exposure differs from the painter's). A missing reference channel stays zero.
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
        intensity["target_colour"]: "target",
        intensity["reference_colour"]: "reference",
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


def scale_channel(raw: np.ndarray, top: float, intensity: Mapping[str, Any]) -> np.ndarray:
    """One channel as float32 in the classifier's units: divided by the full scale ``top``
    (``intensity['mode'] == 'bit_depth'``) or stretched between two percentiles."""
    raw = raw.astype(np.float32)
    if intensity["mode"] == "percentile":
        low, high = np.percentile(raw, intensity["percentiles"])
        return (raw - low) / max(high - low, 1e-6)
    return raw / top


# ---------------------------------------------------------------- nuclei and crops


def border_labels(labels: np.ndarray) -> np.ndarray:
    """Ids of the instances that touch the image border (cut by it: excluded from calls)."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.unique(edge[edge > 0])


def nucleus_table(labels: np.ndarray) -> pd.DataFrame:
    """One row per instance: id, centre, area, equivalent diameter, border flag."""
    ids = np.unique(labels[labels > 0])
    if len(ids) == 0:
        return pd.DataFrame(
            {
                "cell": pd.Series([], dtype=np.int64),
                "centre_x": pd.Series([], dtype=float),
                "centre_y": pd.Series([], dtype=float),
                "area": pd.Series([], dtype=np.int64),
                "diameter": pd.Series([], dtype=float),
                "border": pd.Series([], dtype=bool),
            }
        )
    ys, xs = np.nonzero(labels)
    owner = labels[ys, xs]
    top = int(ids.max()) + 1
    area = np.bincount(owner, minlength=top)[ids]
    cx = np.bincount(owner, weights=xs, minlength=top)[ids] / area
    cy = np.bincount(owner, weights=ys, minlength=top)[ids] / area
    return pd.DataFrame(
        {
            "cell": ids.astype(np.int64),
            "centre_x": cx,
            "centre_y": cy,
            "area": area.astype(np.int64),
            "diameter": 2 * np.sqrt(area / math.pi),
            "border": np.isin(ids, border_labels(labels)),
        }
    )


def reference_diameter(nuclei: Mapping[str, Any]) -> float:
    """Typical equivalent-circle diameter (px) of the painter's nuclei in a training patch.

    The painter draws a major-axis diameter and squeezes the minor axis by ``aspect``, so
    the equivalent diameter is ``d * sqrt(aspect)``; the midpoints of both ranges are used.
    """
    low, high = bounds(nuclei["diameter"])
    a_low, a_high = bounds(nuclei["aspect"])
    return float((low + high) / 2 * math.sqrt((a_low + a_high) / 2))


def crop_scale(
    diameter: float, settings: Mapping[str, Any], reference: float, pixel_ratio: float | None
) -> float:
    """Zoom that brings one nucleus to the classifier's training geometry.

    ``nucleus``: its diameter becomes ``reference``; ``pixel_size``: the field's pixel size
    over the painter's (``pixel_ratio``); ``none``: 1.
    """
    mode = settings["scale"]
    if mode == "nucleus":
        return reference / max(diameter, 1.0)
    if mode == "pixel_size":
        if pixel_ratio is None:
            raise InputError(
                "config",
                "scale 'pixel_size' needs slides.pixel_size and a pixel_size column in the sheet",
                item="slides.crops.scale",
            )
        return pixel_ratio
    return 1.0


def crop_cells(
    channels: np.ndarray,
    labels: np.ndarray,
    cells: pd.DataFrame,
    size: int,
    scales: np.ndarray,
    outside: str,
) -> np.ndarray:
    """Crop every cell, centred, zoomed by its scale, as N x 3 x size x size float32.

    A crop covers ``size / scale`` field pixels; what lies beyond the field is filled with
    each channel's background (median outside the nuclei). ``outside='keep'`` leaves the
    pixels around the nucleus as they are (the painter's patches show background, haze and
    neighbouring nuclei, so the classifier was trained on them); ``'zero'`` blanks every
    pixel outside the cell's own mask.
    """
    out = np.zeros((len(cells), channels.shape[0], size, size), np.float32)
    if len(cells) == 0:
        return out
    background = labels == 0
    fill = [float(np.median(c[background])) if background.any() else 0.0 for c in channels]
    for n, (row, scale) in enumerate(zip(cells.itertuples(), scales, strict=True)):
        side = max(math.ceil(size / scale), 4)
        # Translation only: the window's centre lands on the nucleus centre.
        shift = np.float32([[1, 0, side / 2 - row.centre_x], [0, 1, side / 2 - row.centre_y]])
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        for c, channel in enumerate(channels):
            window = cv2.warpAffine(
                channel,
                shift,
                (side, side),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=fill[c],
            )
            out[n, c] = cv2.resize(window, (size, size), interpolation=interpolation)
        if outside == "zero":
            own = cv2.warpAffine(
                (labels == row.cell).astype(np.uint8),
                shift,
                (side, side),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            keep = cv2.resize(own, (size, size), interpolation=cv2.INTER_NEAREST) > 0
            out[n] *= keep
    return np.clip(out, 0, 1)


def truth_classes(
    truth: np.ndarray | None,
    pred: np.ndarray,
    cells: pd.DataFrame,
    labels_table: pd.DataFrame | None,
) -> pd.DataFrame:
    """Truth instance (IoU >= 0.5 match) and its class for every predicted cell."""
    out = pd.DataFrame({"cell": cells["cell"], "truth_cell": 0, "iou": 0.0, "truth_class": UNKNOWN})
    if truth is None or len(cells) == 0:
        return out
    matches = match_instances(truth, pred, MATCH_IOU)
    # match_instances works on the label values directly (1..max), so ids map back as is.
    by_pred = dict(zip(matches["pred"].astype(int), matches["truth"].astype(int), strict=True))
    ious = dict(zip(matches["pred"].astype(int), matches["iou"], strict=True))
    out["truth_cell"] = [by_pred.get(int(c), 0) for c in cells["cell"]]
    out["iou"] = [float(ious.get(int(c), 0.0)) for c in cells["cell"]]
    if labels_table is not None:
        names = dict(
            zip(labels_table["label"].astype(int), labels_table["class_name"], strict=True)
        )
        out["truth_class"] = [names.get(t, UNKNOWN) for t in out["truth_cell"]]
    return out


# ---------------------------------------------------------------- per-sample summaries


def summarise(
    cells: pd.DataFrame, classes: Sequence[str], calls: Mapping[str, Any]
) -> pd.DataFrame:
    """Per sample: cells called, certain and uncertain counts, class counts and fractions
    among certain cells, verdict (and, where truth exists, accuracy over matched cells)."""
    rows = []
    samples = list(dict.fromkeys(cells["sample"]))
    for sample in samples:
        part = cells[cells["sample"] == sample]
        sure = part[part["certainty"] >= calls["min_certainty"]]
        counts = sure["predicted_class"].value_counts()
        fractions = {
            name: (float(counts.get(name, 0)) / len(sure) if len(sure) else 0.0) for name in classes
        }
        row: dict[str, Any] = {
            "sample": sample,
            "fields": int(part["field"].nunique()),
            "cells": len(part),
            "certain": len(sure),
            "uncertain": len(part) - len(sure),
        }
        for name in classes:
            row[f"n_{name}"] = int(counts.get(name, 0))
        for name in classes:
            row[f"fraction_{name}"] = fractions[name]
        row["verdict"] = verdict(fractions, len(sure), calls)
        known = part[part["truth_class"] != UNKNOWN]
        row["accuracy_matched"] = (
            float((known["truth_class"] == known["predicted_class"]).mean())
            if len(known)
            else np.nan
        )
        rows.append(row)
    columns = [
        "sample", "fields", "cells", "certain", "uncertain",
        *[f"n_{c}" for c in classes], *[f"fraction_{c}" for c in classes],
        "verdict", "accuracy_matched",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------- one sample, end to end


def _empty_predictions(classes: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "index": pd.Series([], dtype=np.int64),
            "prediction": pd.Series([], dtype=np.int64),
            "predicted_class": pd.Series([], dtype=object),
            "confidence": pd.Series([], dtype=float),
            "certainty": pd.Series([], dtype=float),
        }
    )
    for name in classes:
        frame[f"p_{name}"] = pd.Series([], dtype=float)
    return frame


def call_sample(
    sheet: str | Path,
    sample: str,
    nuclei_model: str | Path,
    classifier: str | Path,
    settings: Mapping[str, Any],
    paint: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    cell_labels: str | Path | None = None,
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """Segment, crop and classify every field of one sample; write its outputs atomically.

    ``outputs``: ``cells`` (Parquet, one row per cell), ``stack``/``table`` (the crops as a
    patch set), ``overlay`` (PNG, one panel per field), ``card`` (HTML report card),
    ``timing`` (JSON: seconds per stage, segmentation scores where truth exists).
    ``cell_labels``: a table (label, class_name and optionally field) of truth classes of
    the mask instances. A field without nuclei gives empty rows and a warning.
    """
    from fishline import models
    from fishline.segment import load_cellpose, segment_dapi
    from fishline.slide_figures import overlay_figure, sample_card
    from fishline.train.fish import predict
    from fishline.train.loop import setup_device

    frame = read_slide_sheet(sheet)
    rows = frame[frame["sample"] == sample].to_dict("records")
    if not rows:
        raise InputError(str(sheet), f"no rows for sample '{sample}'", item="sample")
    dev = setup_device(device, threads, 0)
    cellpose, info = load_cellpose(nuclei_model, dev)
    trained = float(info["metadata"]["object_diameter"])
    loaded = models.load(classifier)
    classes = list(loaded[1]["class_names"])
    size = int(paint["patch_size"])
    reference = settings["crops"]["diameter"] or reference_diameter(paint["nuclei"])
    intensity = {
        **settings["crops"]["intensity"],
        "target_colour": paint["probes"]["target"],
        "reference_colour": paint["probes"]["reference"],
    }
    labels_table = read_cell_labels(cell_labels) if cell_labels else None
    absent = [role for role in ("target", "reference") if any(pd.isna(r.get(role)) for r in rows)]
    caution = (
        f"No {' or '.join(absent)} probe channel in the sheet for this sample: the classifier "
        "saw an empty channel there, which it was never trained on, so its calls and "
        "certainties are outside its training domain."
        if absent
        else ""
    )
    if caution:
        log.warning("%s (sheet %s): %s", sample, sheet, caution)
    seconds = {"segmentation": 0.0, "cropping": 0.0, "classification": 0.0}
    cell_parts, crops, panels, scores = [], [], [], []
    for row in progress_bar(rows, desc=f"fields of {sample}", unit="field"):
        item = load_field(row, sheet, intensity)
        started = time.perf_counter()
        ratio = (
            item.pixel_size / settings["pixel_size"]
            if item.pixel_size and settings["pixel_size"]
            else None
        )
        diameter = trained
        if settings["segment"]["diameter_source"] == "estimate":
            diameter = estimate_nucleus_diameter(item.channels[CHANNELS.index("dapi")]) or trained
        elif ratio is not None:
            diameter = trained / ratio
        labels = segment_dapi(
            cellpose, item.channels[CHANNELS.index("dapi")], settings["segment"], diameter
        )
        seconds["segmentation"] += time.perf_counter() - started
        table = nucleus_table(labels)
        if item.truth is not None:
            for threshold in (0.5, 0.75):
                scores.append(
                    {
                        "field": item.field,
                        "iou": threshold,
                        **instance_scores(item.truth, labels, threshold),
                    }
                )
        started = time.perf_counter()
        kept = table[~table["border"]].reset_index(drop=True)
        scale = np.array(
            [crop_scale(d, settings["crops"], reference, ratio) for d in kept["diameter"]]
        )
        patches = crop_cells(item.channels, labels, kept, size, scale, settings["crops"]["outside"])
        seconds["cropping"] += time.perf_counter() - started
        if len(kept) == 0:
            message = f"{item.path} (sample {sample}, field {item.field}): no nuclei found"
            warnings.warn(message, NoNucleiWarning, stacklevel=2)
            log.warning("%s", message)
        own = read_cell_labels(row["cell_labels"]) if pd.notna(row.get("cell_labels")) else None
        matched = truth_classes(
            item.truth, labels, kept, _field_labels(own if own is not None else labels_table, item)
        )
        kept = kept.merge(matched, on="cell")
        kept.insert(0, "field", item.field)
        kept.insert(0, "sample", sample)
        kept["scale"] = scale
        kept["image"] = item.path
        cell_parts.append(kept)
        crops.append(patches)
        panels.append((item, labels, table))
        log.info(
            "%s/%s: %d nuclei (%d at the border, excluded), diameter %.1f px",
            sample, item.field, len(table), int(table["border"].sum()), diameter,
        )  # fmt: skip
    cells = pd.concat(cell_parts, ignore_index=True)
    cells.insert(2, "index", np.arange(len(cells)))
    stack = np.concatenate(crops) if crops else np.zeros((0, 3, size, size), np.float32)
    crop_table = pd.DataFrame(
        {"index": cells["index"], "class_name": cells["truth_class"], "sample": sample}
    )
    with atomic_outputs(outputs["stack"], outputs["table"]) as (stack_temp, table_temp):
        write_unit_stack(stack_temp, stack, CHANNELS, paint["probes"]["target"])
        crop_table.to_parquet(table_temp, index=False)
    started = time.perf_counter()
    if len(cells):
        predictions = predict(
            loaded, outputs["stack"], outputs["table"], device, threads, allow_unknown=True
        )
        predictions = predictions.drop(columns=["label", "class_name", "correct", "representation"])
    else:
        predictions = _empty_predictions(classes)
    seconds["classification"] += time.perf_counter() - started
    cells = cells.merge(predictions, on="index", how="left")
    cells["certain"] = cells["certainty"] >= settings["calls"]["min_certainty"]
    summary = (
        summarise(cells, classes, settings["calls"])
        if len(cells)
        else _empty_summary(sample, len(rows), classes, settings["calls"])
    )
    timing = {
        "sample": sample,
        "fields": len(rows),
        "cells": len(cells),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "segmentation": _pooled(scores),
    }
    with atomic_outputs(outputs["cells"], outputs["timing"]) as (cells_temp, timing_temp):
        cells.to_parquet(cells_temp, index=False)
        timing_temp.write_text(json.dumps(timing, indent=2))
    overlay_figure(panels, cells, classes, settings["calls"]["min_certainty"], outputs["overlay"])
    sample_card(
        summary.iloc[0].to_dict(), classes, settings["calls"], timing, outputs["card"], caution
    )
    log.info("%s: %s", sample, summary.iloc[0].to_dict())
    return cells


def read_cell_labels(path: str | Path) -> pd.DataFrame:
    """A per-cell truth table (Parquet or TSV) with columns label and class_name."""
    path = Path(path)
    try:
        parquet = path.suffix == ".parquet"
        table = pd.read_parquet(path) if parquet else pd.read_csv(path, sep="\t")
    except Exception as error:  # pandas/pyarrow raise many types for bad files
        raise InputError(str(path), f"cannot read cell labels ({error})") from error
    missing = {"label", "class_name"} - set(table.columns)
    if missing:
        raise InputError(str(path), f"cell labels lack column(s) {sorted(missing)}")
    return table


def _field_labels(table: pd.DataFrame | None, item: Field) -> pd.DataFrame | None:
    """The rows of a cell-label table that belong to one field (all rows without ``field``)."""
    if table is None or "field" not in table:
        return table
    return table[table["field"].astype(str).isin([item.field, item.sample])]


def _empty_summary(
    sample: str, fields: int, classes: Sequence[str], calls: Mapping[str, Any]
) -> pd.DataFrame:
    row: dict[str, Any] = {
        "sample": sample,
        "fields": fields,
        "cells": 0,
        "certain": 0,
        "uncertain": 0,
    }
    row.update({f"n_{c}": 0 for c in classes})
    row.update({f"fraction_{c}": 0.0 for c in classes})
    row["verdict"] = verdict({}, 0, calls)
    row["accuracy_matched"] = np.nan
    return pd.DataFrame([row])


def _pooled(scores: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Segmentation scores summed over a sample's fields (TP/FP/FN before the ratios)."""
    if not scores:
        return None
    frame = pd.DataFrame(scores)
    out: dict[str, Any] = {}
    for threshold, part in frame.groupby("iou"):
        pooled = pooled_scores(part)
        out.update({f"{key}@{threshold}": pooled[key] for key in ("ap", "f1", "tp", "fp", "fn")})
    return out


def summarise_set(
    cells_files: Sequence[str | Path],
    timing_files: Sequence[str | Path],
    stacks: Sequence[str | Path],
    classes: Sequence[str],
    calls: Mapping[str, Any],
    gallery_size: int,
    outputs: Mapping[str, str | Path],
    name: str,
) -> pd.DataFrame:
    """Pool a set's samples: ``cells`` (Parquet), ``summary`` (TSV), ``html`` (report table
    with the rule stated) and ``gallery`` (PNG of each called class's ``gallery_size`` most and
    least certain cells)."""
    from fishline.io import read_stack
    from fishline.slide_figures import certainty_gallery, summary_html

    parts = []
    for file in cells_files:
        part = pd.read_parquet(file)
        parts.append(part)
    cells = pd.concat(parts, ignore_index=True)
    summaries = []
    timings = [json.loads(Path(file).read_text()) for file in timing_files]
    for part, timing in zip(parts, timings, strict=True):
        if len(part):
            summaries.append(summarise(part, classes, calls))
        else:
            summaries.append(_empty_summary(timing["sample"], timing["fields"], classes, calls))
    summary = pd.concat(summaries, ignore_index=True)
    for key in ("ap@0.5", "ap@0.75"):
        summary[f"segmentation_{key}"] = [
            (t["segmentation"] or {}).get(key, np.nan) for t in timings
        ]
    summary.insert(1, "set", name)
    cells.insert(0, "set", name)
    with atomic_outputs(outputs["cells"], outputs["summary"]) as (cells_temp, summary_temp):
        cells.to_parquet(cells_temp, index=False)
        summary.to_csv(summary_temp, sep="\t", index=False)
    summary_html(summary, rule_text(calls), name, outputs["html"])
    crops = {t["sample"]: read_stack(s)[0] for t, s in zip(timings, stacks, strict=True)}
    certainty_gallery(cells, crops, classes, gallery_size, outputs["gallery"])
    return summary


def paint_training_fields(
    paint: Mapping[str, Any],
    fields: Mapping[str, Any],
    count: int,
    seed: int,
    outdir: str | Path,
) -> Path:
    """Paint ``count`` whole fields (like fish.fields) to train the nucleus model on.

    Writes the painter's sheet and nucleus table plus ``cellpose.tsv``, an image sheet
    (sample, image, dapi, mask) that :func:`fishline.segment.train_cellpose` reads.
    """
    from fishline.paint import paint_fields

    outdir = Path(outdir)
    settings = {**fields, "n": count}
    paint_fields(
        dict(paint), settings, seed, outdir, outdir / "fields.tsv", outdir / "nuclei.parquet"
    )
    sheet = pd.read_csv(outdir / "fields.tsv", sep="\t")
    training = sheet[["sample", "image", "dapi", "mask"]]
    with atomic_outputs(outdir / "cellpose.tsv") as (temp,):
        training.to_csv(temp, sep="\t", index=False)
    return outdir / "cellpose.tsv"


def paint_crop_set(
    paint: Mapping[str, Any],
    fields: Mapping[str, Any],
    crops: Mapping[str, Any],
    split: str,
    seed: int,
    stack: str | Path,
    table: str | Path,
) -> pd.DataFrame:
    """Paint the ``split`` patch set as slide calling sees cells: whole painted fields
    (``fields``) cut into one crop per nucleus clear of the border, with slide calling's zoom,
    framing and intensity scaling (``crops``: the ``slides.crops`` settings), until the
    split's ``n`` crops.

    Patches painted one nucleus at a time lack what a field adds (neighbours cut by the crop,
    the brightness spread, defocus, field-wide haze and illumination); a classifier trained on
    these crops meets at call time what it was trained on. Writes the outputs of
    :func:`fishline.paint.paint_patch_set` (a 16-bit stack, as slide calling writes its crops;
    the table has the painter's per-nucleus truth plus ``field``, ``instance`` and
    ``crop_scale``). Field ``k`` is painted from ``SeedSequence([seed, k])``.
    """
    from fishline.paint.fields import paint_field
    from fishline.paint.fish import check_settings, split_settings
    from fishline.paint.nuclei import NucleusLibrary

    settings = split_settings(dict(paint), split)
    check_settings(settings)
    if settings["stain"] != "fish":
        raise InputError(
            "config", "crops cut from fields need stain 'fish'", item=f"fish.paint.splits.{split}"
        )
    library = None
    if settings["nuclei"]["source"] == "library":
        library = NucleusLibrary.from_sheet(settings["nuclei"]["library"])
    count, size, classes = settings["n"], settings["patch_size"], settings["classes"]
    reference = crops["diameter"] or reference_diameter(settings["nuclei"])
    top = float((1 << int(settings["bit_depth"])) - 1)
    pieces: list[np.ndarray] = []
    records: list[pd.DataFrame] = []
    got = field = 0
    progress = progress_bar(total=count, desc=f"paint {split} from fields", unit="img")
    while got < count:
        if field >= 20 and got == 0:
            raise InputError(
                "config",
                "20 painted fields gave no nucleus clear of the border",
                item="fish.fields",
            )
        rng = np.random.default_rng(np.random.SeedSequence([seed, field]))
        image, labels, nuclei = paint_field(
            rng, settings, dict(fields), field % len(classes), library
        )
        channels = np.stack([scale_channel(c, top, crops["intensity"]) for c in image])
        cells = nucleus_table(labels)
        kept = cells[~cells["border"]].reset_index(drop=True).iloc[: count - got]
        scale = np.array([crop_scale(d, crops, reference, None) for d in kept["diameter"]])
        pieces.append(
            crop_cells(np.clip(channels, 0, 1), labels, kept, size, scale, crops["outside"])
        )
        truth = nuclei.rename(columns={"label": "instance"}).set_index("instance")
        record = truth.loc[kept["cell"].to_numpy()].reset_index()
        record.insert(0, "field", field)
        record["crop_scale"] = np.round(scale, 4)
        records.append(record)
        got += len(kept)
        progress.update(len(kept))
        field += 1
    progress.close()
    frame = pd.concat(records, ignore_index=True)
    frame.insert(0, "index", np.arange(count))
    labels_of = frame["class_name"].map({name: i for i, name in enumerate(classes)})
    frame.insert(1, "label", labels_of.astype(np.int64))
    frame.insert(2, "split", split)
    frame["seed"] = seed
    with atomic_outputs(stack, table) as (stack_temp, table_temp):
        write_unit_stack(stack_temp, np.concatenate(pieces), CHANNELS, settings["probes"]["target"])
        frame.to_parquet(table_temp, index=False)
    log.info(
        "%d %s crops from %d fields; class counts %s",
        count, split, field, frame["class_name"].value_counts().to_dict(),
    )  # fmt: skip
    return frame
