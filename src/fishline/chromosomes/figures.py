"""Report figures and tables of the chromosome track: painted spreads, segmentation overlays,
segmentation scores, crop galleries and crop counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from skimage.segmentation import find_boundaries

from fishline.chromosomes.realism import measure_sheet, side_by_side
from fishline.images import read_labels
from fishline.io import atomic_outputs, read_patch_set
from fishline.metaphase_sheet import iter_sheet, load_row
from fishline.plots import save_figure
from fishline.schema import default

PRED_COLOUR = (1.0, 0.85, 0.0)
TRUTH_COLOUR = (0.0, 0.9, 1.0)


def stretch(channel: np.ndarray) -> np.ndarray:
    """Percentile stretch (1 to 99.8) to [0, 1], so 8- and 16-bit images look alike."""
    data = channel.astype(np.float32)
    low, high = np.percentile(data, [1, 99.8])
    return np.clip((data - low) / max(high - low, 1e-6), 0, 1)


def composite(dapi: np.ndarray, paint: Mapping[str, np.ndarray]) -> np.ndarray:
    """H x W x 3 display: red paint in red, green paint in green, DAPI in blue (and grey
    when no paint channel is present)."""
    blue = stretch(dapi)
    if not paint:
        return np.repeat(blue[..., None], 3, axis=2)
    zero = np.zeros_like(blue)
    red = stretch(paint["red"]) if "red" in paint else zero
    green = stretch(paint["green"]) if "green" in paint else zero
    return np.stack([red, green, 0.8 * blue], axis=2)


def overlay_figure(
    masks_sheet: str | Path,
    path: str | Path,
    max_images: int = default("chromosomes.report.overlays"),
) -> None:
    """DAPI images of a set with predicted outlines (yellow) and truth outlines (cyan)."""
    rows = pd.read_csv(masks_sheet, sep="\t").to_dict("records")[:max_images]
    figure, axes = plt.subplots(1, len(rows), figsize=(5.5 * len(rows), 5), squeeze=False)
    for axis, row in zip(axes[0], rows, strict=True):
        item = load_row(row, masks_sheet)
        shown = np.repeat(stretch(item.dapi)[..., None], 3, axis=2)
        if item.truth is not None:
            shown[find_boundaries(item.truth, mode="inner")] = TRUTH_COLOUR
        pred = read_labels(row["pred"], "instances", None)
        shown[find_boundaries(pred, mode="inner")] = PRED_COLOUR
        axis.imshow(shown)
        axis.set_title(f"{row['sample']}: {int(pred.max())} segmented", fontsize=9)
        axis.axis("off")
    figure.suptitle("Cellpose outlines (yellow) and truth (cyan) on DAPI", fontsize=10)
    save_figure(figure, path)


def spread_examples(sheet: str | Path, path: str | Path, count: int = 3) -> None:
    """A few painted spreads in colour next to their DAPI channel."""
    rows = pd.read_csv(sheet, sep="\t").head(count).to_dict("records")
    figure, axes = plt.subplots(2, len(rows), figsize=(5 * len(rows), 8.5), squeeze=False)
    for column, row in enumerate(rows):
        row = {**row, "image": str(Path(sheet).parent / row["image"])}
        row.pop("mask", None)
        item = load_row(row, sheet)
        axes[0, column].imshow(composite(item.dapi, item.paint))
        axes[0, column].set_title(f"{row['sample']}: paint", fontsize=9)
        axes[1, column].imshow(stretch(item.dapi), cmap="gray")
        axes[1, column].set_title("DAPI (the segmentation input)", fontsize=9)
    for axis in axes.ravel():
        axis.axis("off")
    save_figure(figure, path)


def crop_gallery(
    crop_sets: Mapping[str, tuple[str, str]], path: str | Path, per_class: int, seed: int
) -> None:
    """One row per (set, label) with up to ``per_class`` random crops of that label."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, (stack_path, table_path) in crop_sets.items():
        stack, table = read_patch_set(stack_path, table_path)
        labels = table["label"] if "label" in table else pd.Series("unlabelled", table.index)
        for label in sorted(labels.unique()):
            chosen = np.flatnonzero(labels.to_numpy() == label)
            chosen = rng.choice(chosen, min(per_class, len(chosen)), replace=False)
            rows.append((f"{name}\n{label} ({(labels == label).sum()})", stack[np.sort(chosen)]))
    rows = rows or [("no crops", np.zeros((0, 1, 8, 8), np.uint8))]
    figure, axes = plt.subplots(
        len(rows), per_class, figsize=(1.1 * per_class, 1.25 * len(rows)), squeeze=False
    )
    for (title, crops), line in zip(rows, axes, strict=True):
        line[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=7)
        for axis, crop in zip(line, crops, strict=False):
            paint = {c: crop[i + 1] for i, c in enumerate(("red", "green")) if i + 1 < len(crop)}
            axis.imshow(_crop_rgb(crop[0], paint))
        for axis in line:
            axis.set_xticks([])
            axis.set_yticks([])
        for axis in line[max(len(crops), 1) :]:
            axis.set_frame_on(False)
    save_figure(figure, path)


def _crop_rgb(dapi: np.ndarray, paint: Mapping[str, np.ndarray]) -> np.ndarray:
    """Crops share one scale (the dtype's full range) so brightness compares across crops."""
    top = float(np.iinfo(dapi.dtype).max) if dapi.dtype.kind in "ui" else 1.0
    blue = dapi.astype(np.float32) / top
    if not paint:
        return np.repeat(blue[..., None], 3, axis=2)
    zero = np.zeros_like(blue)
    red = paint["red"].astype(np.float32) / top if "red" in paint else zero
    green = paint["green"].astype(np.float32) / top if "green" in paint else zero
    return np.clip(np.stack([red, green, 0.8 * blue], axis=2), 0, 1)


def crop_counts(tables: Mapping[str, str], tsv: str | Path, html: str | Path) -> pd.DataFrame:
    """Crops per set and label (plus how many matched a truth instance)."""
    rows = []
    for name, table_path in tables.items():
        table = pd.read_parquet(table_path)
        labels = table["label"] if "label" in table else pd.Series("unlabelled", table.index)
        for label, count in labels.value_counts().sort_index().items():
            rows.append({"set": name, "label": label, "crops": int(count)})
        rows.append({"set": name, "label": "all", "crops": len(table)})
    frame = pd.DataFrame(rows, columns=["set", "label", "crops"])
    pivot = frame.pivot_table(index="set", columns="label", values="crops", fill_value=0)
    with atomic_outputs(tsv, html) as (tsv_temp, html_temp):
        frame.to_csv(tsv_temp, sep="\t", index=False)
        html_temp.write_text(
            "<h3>Chromosome crops per set and label</h3>" + pivot.astype(int).to_html()
        )
    return frame


def segmentation_table(
    metrics: Mapping[str, str],
    tsv: str | Path,
    html: str | Path,
    target: float,
    before_self_training: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """For every set with truth: the model that segmented it, AP, F1, precision and recall
    at IoU 0.5 / 0.75, the same at IoU 0.5 for the threshold baseline, and chromosomes per
    spread against the truth. A set in ``before_self_training`` (set -> the metrics of its
    pseudo-masks) was segmented by the self-trained model: its painted model's row comes
    first, then the self-trained row."""
    rows = []
    for name, metrics_path in metrics.items():
        values = json.loads(Path(metrics_path).read_text())
        if not values["has_truth"]:
            continue
        before = (before_self_training or {}).get(name)
        if before is not None:
            rows.append(_segmentation_row(name, "painted", json.loads(Path(before).read_text())))
        rows.append(
            _segmentation_row(name, "painted" if before is None else "self-trained", values)
        )
    frame = pd.DataFrame(rows)
    with atomic_outputs(tsv, html) as (tsv_temp, html_temp):
        frame.to_csv(tsv_temp, sep="\t", index=False)
        html_temp.write_text(
            f"<h3>Chromosome segmentation (target: synthetic AP@0.5 &ge; {target})</h3>"
            "<p>Baseline: blur + Otsu threshold + connected components on the same spreads "
            "(touching chromosomes stay one). Model: painted = trained on painted spreads "
            "only; self-trained = then fine-tuned on its own set's spreads, pseudo-labelled "
            "by the painted model (no truth mask read; chromosomes.self_training), whose "
            "pseudo-masks are scored in the painted row above it. Count "
            "error: mean |found - true| chromosomes per spread. Size error: |estimated / true "
            "object diameter - 1| per spread (the estimate rescales each spread to the "
            "trained chromosome size).</p>" + frame.to_html(index=False, float_format="%.3f")
        )
    return frame


def _segmentation_row(name: str, model: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """One row of :func:`segmentation_table` from a set's segmentation metrics."""
    row = {"set": name, "model": model, "images": values["images"]}
    for iou in ("0.5", "0.75"):
        for key in ("ap", "f1", "precision", "recall", "tp", "fp", "fn"):
            row[f"{key}@{iou}"] = values[f"{key}@{iou}"]
    for key in ("f1", "precision", "recall"):
        row[f"baseline {key}@0.5"] = values[f"baseline_{key}@0.5"]
    row["chromosomes per spread"] = values["instances_per_image"]
    row["truth per spread"] = values["truth_instances_per_image"]
    row["count error per spread"] = values["count_error_per_image"]
    # object size: the diameter the spread was rescaled by against the truth's
    row["size error median"] = values.get("diameter_error_median", float("nan"))
    row["size error max"] = values.get("diameter_error_max", float("nan"))
    return row


def realism_figure(
    examples: Mapping[str, np.ndarray], chromosomes: pd.DataFrame, path: str | Path
) -> None:
    """One DAPI image per source at the same display scaling, then the per-chromosome width,
    length, edge-width and banding distributions of every source
    (:mod:`fishline.chromosomes.realism`)."""
    figure, axes = plt.subplots(2, 3, figsize=(13, 8))
    panels = list(axes.ravel())
    for ax, (source, dapi) in zip(panels[:2], examples.items(), strict=False):
        low, high = np.percentile(dapi, [1, 99.8])
        ax.imshow(np.clip((dapi - low) / max(high - low, 1e-6), 0, 1), cmap="gray")
        ax.set(title=f"{source} (DAPI)", xticks=[], yticks=[])
    for ax, (column, title, unit) in zip(
        panels[2:],
        (
            ("width_px", "chromosome width", "px"),
            ("length_px", "chromosome length", "px"),
            ("edge_px", "edge width (blur)", "px"),
            ("banding", "intensity spread along the axis", "x chromosome signal"),
        ),
        strict=True,
    ):
        values = chromosomes[column]
        bins = np.linspace(values.quantile(0.005), values.quantile(0.995), 40)
        for source, part in chromosomes.groupby("source", sort=False):
            ax.hist(part[column], bins=bins, density=True, alpha=0.5, label=source)
        ax.set(title=title, xlabel=unit, ylabel="density")
        ax.legend()
    figure.tight_layout()
    save_figure(figure, path)


def realism_report(
    painted_sheet: str | Path,
    real_sheets: Mapping[str, str | Path],
    tsv: str | Path,
    html: str | Path,
    figure: str | Path,
) -> pd.DataFrame:
    """Painted training spreads against the real spreads with truth (all real sets pooled):
    the per-spread statistics as a TSV, their side-by-side table as HTML, and the figure."""
    painted, painted_chromosomes = measure_sheet(painted_sheet, "painted")
    measured = [measure_sheet(sheet, "real") for sheet in real_sheets.values()]
    real = pd.concat([spreads for spreads, _ in measured], ignore_index=True)
    chromosomes = pd.concat([c for _, c in measured] + [painted_chromosomes], ignore_index=True)
    spreads = pd.concat([real, painted], ignore_index=True)
    table = side_by_side(spreads)
    first_real = next(iter(real_sheets.values()))
    examples = {
        f"real: {real['spread'].iloc[0]}": next(iter_sheet(first_real)).dapi,
        f"painted: {painted['spread'].iloc[0]}": next(iter_sheet(painted_sheet)).dapi,
    }
    realism_figure(examples, chromosomes, figure)
    with atomic_outputs(tsv, html) as (tsv_temp, html_temp):
        spreads.to_csv(tsv_temp, sep="\t", index=False)
        html_temp.write_text(
            f"<h3>Painted against real metaphases ({len(painted)} painted training spreads, "
            f"{len(real)} real spreads of {', '.join(real_sheets)})</h3>"
            "<p>Median [quartiles] over spreads; intensities in units of the chromosome "
            "signal (chromosome level minus background).</p>"
            + table.to_html(index=False, float_format="%.2f")
        )
    return table
