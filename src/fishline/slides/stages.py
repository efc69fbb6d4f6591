"""MYCN status of whole FISH slides, one sample at a time: fields -> Cellpose nuclei -> crops
in the classifier's patch geometry -> per-cell class, probabilities and certainty ->
per-sample verdict (``call_sample``). The set's summary is :mod:`fishline.slides.summary`, the
painted training sets are in :mod:`fishline.slides.training_sets`. Every function takes plain
values, typed settings and paths and writes its outputs atomically, so tests and tools call it
without Snakemake."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fishline import models
from fishline.errors import InputError
from fishline.fish.classifier import predict
from fishline.instances import (
    estimate_nucleus_diameter,
    instance_scores,
    pooled_scores,
)
from fishline.io import atomic_outputs, write_unit_stack
from fishline.logging import get_logger, progress_bar
from fishline.paint.fish import CHANNELS
from fishline.paint.fish_settings import FishPaintSettings
from fishline.schema import default, setting_default, typed_settings
from fishline.segment import SegmentSettings, load_cellpose, segment_dapi
from fishline.slides.cells import (
    CropSettings,
    crop_cells,
    crop_scale,
    nucleus_table,
    reference_diameter,
    truth_classes,
)
from fishline.slides.fields import Field, load_field
from fishline.slides.figures import overlay_figure, sample_card
from fishline.slides.sheet import read_slide_sheet
from fishline.slides.verdicts import CallSettings, empty_summary, summarise
from fishline.train.loop import setup_device

log = get_logger("slides")
STAGES = ("segmentation", "cropping", "classification")  # timed per sample


class NoNucleiWarning(UserWarning):
    """A field (or a whole sample) in which no nucleus was found: outputs are empty."""


@dataclass(frozen=True)
class SlideSettings:
    """How a sample's fields are called (config block ``slides``, with a real set's
    ``segment`` and ``crops`` changes merged over it; each default is the schema's, its
    meaning in config/README.md).

    Parameters
    ----------
    pixel_size : float or None
        The painter's pixel size (um), for fields whose sheet gives theirs; None = unknown.
    segment : SegmentSettings
        Cellpose's inference settings for nuclei.
    crops : CropSettings
        How cells are cut and scaled.
    calls : CallSettings
        The verdict rules.

    Examples
    --------
    >>> from dataclasses import replace
    >>> settings = SlideSettings()
    >>> settings = replace(settings, calls=replace(settings.calls, min_cells=5))
    """

    pixel_size: float | None = setting_default("slides.pixel_size")
    segment: SegmentSettings = field(default_factory=lambda: SegmentSettings.of_track("slides"))
    crops: CropSettings = field(default_factory=CropSettings)
    calls: CallSettings = field(default_factory=CallSettings)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> SlideSettings:
        """The settings of a ``slides`` block (every key given; the keys that name the
        models, the training and the sets are the workflow's)."""
        ignored = ("painted", "real", "classifier", "cellpose", "report")
        return typed_settings(cls, block, "slides", ignore=ignored)


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


@dataclass
class _FieldCaller:
    """What every field of one sample is segmented and cropped with, and the running
    segmentation and cropping seconds and segmentation scores."""

    segment: Callable[[np.ndarray, float], np.ndarray]  # DAPI, diameter -> nucleus labels
    trained: float  # the nucleus model's object diameter
    settings: SlideSettings
    reference: float  # the painter's typical nucleus diameter
    size: int  # crop side (the classifier's patch size)
    labels: pd.DataFrame | None  # truth classes of the mask instances, for every field
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    scores: list[dict[str, Any]] = field(default_factory=list)

    def diameter(self, item: Field) -> tuple[float, float | None]:
        """The nucleus diameter Cellpose is given for a field, and its pixel-size ratio."""
        settings = self.settings
        ratio = (
            item.pixel_size / settings.pixel_size
            if item.pixel_size and settings.pixel_size
            else None
        )
        if settings.segment.diameter_source == "estimate":
            dapi = item.channels[CHANNELS.index("dapi")]
            return estimate_nucleus_diameter(dapi) or self.trained, ratio
        return (self.trained / ratio if ratio is not None else self.trained), ratio

    def cells(
        self, item: Field, row: Mapping[str, Any], sample: str
    ) -> tuple[pd.DataFrame, np.ndarray, tuple[Field, np.ndarray, pd.DataFrame]]:
        """One field's cells (border nuclei excluded), their crops and its overlay panel."""
        started = time.perf_counter()
        diameter, ratio = self.diameter(item)
        labels = self.segment(item.channels[CHANNELS.index("dapi")], diameter)
        self.seconds["segmentation"] += time.perf_counter() - started
        table = nucleus_table(labels)
        if item.truth is not None:
            for threshold in (0.5, 0.75):
                scores = instance_scores(item.truth, labels, threshold)
                self.scores.append({"field": item.field, "iou": threshold, **scores})
        started = time.perf_counter()
        crops = self.settings.crops
        kept = table[~table["border"]].reset_index(drop=True)
        scale = np.array(
            [crop_scale(d, crops.scale, self.reference, ratio) for d in kept["diameter"]]
        )
        patches = crop_cells(item.channels, labels, kept, self.size, scale, crops.outside)
        self.seconds["cropping"] += time.perf_counter() - started
        if len(kept) == 0:
            message = f"{item.path} (sample {sample}, field {item.field}): no nuclei found"
            warnings.warn(message, NoNucleiWarning, stacklevel=3)
            log.warning("%s", message)
        own = read_cell_labels(row["cell_labels"]) if pd.notna(row.get("cell_labels")) else None
        known = _field_labels(own if own is not None else self.labels, item)
        kept = kept.merge(truth_classes(item.truth, labels, kept, known), on="cell")
        kept.insert(0, "field", item.field)
        kept.insert(0, "sample", sample)
        kept["scale"] = scale
        kept["image"] = item.path
        log.info(
            "%s/%s: %d nuclei (%d at the border, excluded), diameter %.1f px",
            sample, item.field, len(table), int(table["border"].sum()), diameter,
        )  # fmt: skip
        return kept, patches, (item, labels, table)


def _missing_probe_caution(rows: list[dict[str, Any]], sample: str, sheet: str | Path) -> str:
    """A warning for the report card when a probe channel is missing from the sheet."""
    absent = [role for role in ("target", "reference") if any(pd.isna(r.get(role)) for r in rows)]
    if not absent:
        return ""
    caution = (
        f"No {' or '.join(absent)} probe channel in the sheet for this sample: the classifier "
        "saw an empty channel there, which it was never trained on, so its calls and "
        "certainties are outside its training domain."
    )
    log.warning("%s (sheet %s): %s", sample, sheet, caution)
    return caution


def call_sample(
    sheet: str | Path,
    sample: str,
    nuclei_model: str | Path,
    classifier: str | Path,
    settings: SlideSettings,
    paint: FishPaintSettings,
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
    the mask instances. A field without nuclei gives empty rows and a warning. (10
    parameters: the workflow rule's inputs, settings and resources, passed as they are.)
    """
    frame = read_slide_sheet(sheet)
    rows = frame[frame["sample"] == sample].to_dict("records")
    if not rows:
        raise InputError(str(sheet), f"no rows for sample '{sample}'", item="sample")
    cellpose, info = load_cellpose(nuclei_model, setup_device(device, threads, 0))
    loaded = models.load(classifier)
    classes = list(loaded[1]["class_names"])
    size = paint.patch_size
    caller = _FieldCaller(
        segment=lambda dapi, diameter: segment_dapi(cellpose, dapi, settings.segment, diameter),
        trained=float(info["metadata"]["object_diameter"]),
        settings=settings,
        reference=settings.crops.diameter or reference_diameter(paint.nuclei),
        size=size,
        labels=read_cell_labels(cell_labels) if cell_labels else None,
    )
    caution = _missing_probe_caution(rows, sample, sheet)
    cell_parts, crops, panels = [], [], []
    for row in progress_bar(rows, desc=f"fields of {sample}", unit="field"):
        item = load_field(row, sheet, settings.crops.intensity, paint.probes)
        kept, patches, panel = caller.cells(item, row, sample)
        cell_parts.append(kept)
        crops.append(patches)
        panels.append(panel)
    cells = pd.concat(cell_parts, ignore_index=True)
    cells.insert(2, "index", np.arange(len(cells)))
    stack = np.concatenate(crops) if crops else np.zeros((0, 3, size, size), np.float32)
    crop_table = pd.DataFrame(
        {"index": cells["index"], "class_name": cells["truth_class"], "sample": sample}
    )
    with atomic_outputs(outputs["stack"], outputs["table"]) as (stack_temp, table_temp):
        write_unit_stack(stack_temp, stack, CHANNELS, paint.probes.target)
        crop_table.to_parquet(table_temp, index=False)
    started = time.perf_counter()
    if len(cells):
        predictions = predict(
            loaded, outputs["stack"], outputs["table"], device, threads, allow_unknown=True
        )
        predictions = predictions.drop(columns=["label", "class_name", "correct", "representation"])
    else:
        predictions = _empty_predictions(classes)
    caller.seconds["classification"] += time.perf_counter() - started
    cells = cells.merge(predictions, on="index", how="left")
    calls = settings.calls
    cells["certain"] = cells["certainty"] >= calls.min_certainty
    summary = (
        summarise(cells, classes, calls)
        if len(cells)
        else empty_summary(sample, len(rows), classes, calls)
    )
    timing = {
        "sample": sample,
        "fields": len(rows),
        "cells": len(cells),
        "seconds": {k: round(v, 3) for k, v in caller.seconds.items()},
        "segmentation": _pooled(caller.scores),
    }
    with atomic_outputs(outputs["cells"], outputs["timing"]) as (cells_temp, timing_temp):
        cells.to_parquet(cells_temp, index=False)
        timing_temp.write_text(json.dumps(timing, indent=2))
    overlay_figure(panels, cells, classes, calls.min_certainty, outputs["overlay"])
    sample_card(summary.iloc[0].to_dict(), classes, calls, timing, outputs["card"], caution)
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
