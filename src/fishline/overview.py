"""The report's headline figure: one panel per track with the number that track is judged
by, read from the tables the tracks already write (nothing is recomputed here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fishline.plots import CLASS_COLOURS, save_figure

SLIDE_CLASSES = ("normal", "gain", "amplification")
MAX_SAMPLES = 12


def _bars(axes: plt.Axes, groups: list[str], series: Mapping[str, list[float]]) -> None:
    """Grouped vertical bars, one group per entry of ``groups``, values printed on top."""
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        positions = np.arange(len(groups)) + (k - (len(series) - 1) / 2) * width
        drawn = axes.bar(positions, np.nan_to_num(values), width, label=name)
        labels = ["" if np.isnan(v) else f"{v:.2f}" for v in values]
        axes.bar_label(drawn, labels=labels, fontsize=7, padding=1)
    axes.set_xticks(np.arange(len(groups)), groups, fontsize=8)
    axes.set_ylim(0, 1.12)
    axes.legend(fontsize=7, loc="upper left", ncols=min(len(series), 3), frameon=False)


def _fish_panel(axes: plt.Axes, summary: str | Path) -> None:
    frame = pd.read_csv(summary, sep="\t")
    frame["group"] = frame["model"] + "\n" + frame["test_set"]
    _bars(
        axes,
        list(frame["group"]),
        {
            "all cells": list(frame["accuracy"].astype(float)),
            "50 % most certain": list(frame["accuracy_at_50"].astype(float)),
        },
    )
    axes.set_title("FISH classifier: accuracy on painted test sets", fontsize=9)


def _read_metrics(metrics: Mapping[str, str | Path]) -> dict[str, dict]:
    """Name -> the JSON metrics file's contents."""
    return {name: json.loads(Path(path).read_text()) for name, path in metrics.items()}


def _segmentation_panel(axes: plt.Axes, metrics: Mapping[str, str | Path]) -> None:
    scores = _read_metrics(metrics)
    _bars(
        axes,
        list(scores),
        {
            "Cellpose": [s["f1@0.5"] for s in scores.values()],
            "Otsu baseline": [s["baseline_f1@0.5"] for s in scores.values()],
        },
    )
    axes.set_title("Chromosome segmentation: F1 at IoU 0.5 per set", fontsize=9)


def _slides_panel(axes: plt.Axes, summaries: Mapping[str, str | Path]) -> None:
    frame = pd.concat(
        [pd.read_csv(path, sep="\t").assign(set=name) for name, path in summaries.items()]
    ).head(MAX_SAMPLES)
    cells = frame["cells"].clip(lower=1).to_numpy(float)
    left = np.zeros(len(frame))
    rows = np.arange(len(frame))
    for name, colour in zip(SLIDE_CLASSES, CLASS_COLOURS, strict=False):
        share = frame[f"n_{name}"].to_numpy(float) / cells
        axes.barh(rows, share, left=left, color=colour, label=f"certain {name}")
        left += share
    axes.barh(rows, frame["uncertain"] / cells, left=left, color="#cccccc", label="uncertain")
    for row, (verdict, count) in enumerate(zip(frame["verdict"], frame["cells"], strict=True)):
        axes.text(1.02, row, f"{verdict} ({count} cells)", va="center", fontsize=7)
    axes.set_yticks(rows, frame["set"] + ": " + frame["sample"].astype(str), fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("fraction of the sample's cells", fontsize=8)
    axes.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=4, frameon=False)
    axes.set_title("MYCN slides: calls and verdict per sample", fontsize=9, pad=18)


def _generation_panel(axes: plt.Axes, compare: str | Path) -> None:
    frame = pd.read_csv(compare, sep="\t")
    names = [
        f"{data}, {'augmented' if augmented else 'plain'}"
        for data, augmented in zip(frame["training data"], frame["augmentation"], strict=True)
    ]
    rows = np.arange(len(frame))
    drawn = axes.barh(rows, frame["f1 mean"], xerr=frame["f1 std"], capsize=3, color="#55a868")
    axes.bar_label(drawn, fmt="%.2f", fontsize=7, padding=4)
    axes.set_yticks(rows, names, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.12)
    axes.set_xlabel("F1, mean ± std over seeds", fontsize=8)
    axes.set_title("Chromosome classifiers: aberration F1 by training data", fontsize=9)


def _simsearch_panel(axes: plt.Axes, metrics: Mapping[str, str | Path]) -> None:
    scores = _read_metrics(metrics)
    _bars(axes, list(scores), {"mean PR AUC": [s["mean_auc"] for s in scores.values()]})
    axes.set_title("SimSearch: detection PR AUC on the test images", fontsize=9)


def headline_figure(
    out: str | Path,
    fish_summary: str | Path | None = None,
    segmentation: Mapping[str, str | Path] | None = None,
    slides: Mapping[str, str | Path] | None = None,
    generation: str | Path | None = None,
    simsearch: Mapping[str, str | Path] | None = None,
    title: str = "",
) -> list[str]:
    """Draw one panel per track whose table is given (``None`` or empty: track not run) and
    return the panel titles in order. Inputs: ``fish_compare``'s summary.tsv,
    ``segment_evaluate``'s metrics by set, ``slides_summary``'s tables by slide set,
    ``chrom_compare``'s table, ``ss_evaluate``'s metrics by strategy."""
    tracks = (
        (_fish_panel, fish_summary),
        (_segmentation_panel, segmentation),
        (_slides_panel, slides),
        (_generation_panel, generation),
        (_simsearch_panel, simsearch),
    )
    panels = [(draw, table) for draw, table in tracks if table]
    if not panels:
        raise ValueError("the headline figure needs at least one track's table")
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
    for (draw, table), axes in zip(panels, grid.flat, strict=False):
        draw(axes, table)
        axes.tick_params(labelsize=7)
    for axes in grid.flat[len(panels) :]:
        axes.axis("off")
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    titles = [axes.get_title() for axes in grid.flat[: len(panels)]]
    save_figure(figure, out)
    return titles
