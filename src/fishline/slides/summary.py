"""A slide set's summary: its samples' cells pooled, one summary row per sample (verdicts
from :mod:`fishline.slides.verdicts`), the report table with the rule stated and the review
gallery. Light on purpose: it reads what the per-sample calls (:mod:`fishline.slides.stages`)
wrote, so it never loads torch or Cellpose."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fishline.io import atomic_outputs, read_stack
from fishline.slides.figures import certainty_gallery, summary_html
from fishline.slides.verdicts import CallSettings, empty_summary, rule_text, summarise


def summarise_set(
    cells_files: Sequence[str | Path],
    timing_files: Sequence[str | Path],
    stacks: Sequence[str | Path],
    classes: Sequence[str],
    calls: CallSettings,
    gallery_size: int,
    outputs: Mapping[str, str | Path],
    name: str,
) -> pd.DataFrame:
    """Pool a set's samples: ``cells`` (Parquet), ``summary`` (TSV), ``html`` (report table
    with the rule stated) and ``gallery`` (PNG of each called class's ``gallery_size`` most and
    least certain cells)."""

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
            summaries.append(empty_summary(timing["sample"], timing["fields"], classes, calls))
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
