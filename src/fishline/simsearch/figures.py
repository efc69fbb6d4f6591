"""SimSearch report figures and tables: annotations on the displayed images, PR curves."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from fishline.plots import CLASS_COLOURS, plt, save_figure
from fishline.simsearch.images import ImageSet

# Display colours (RGB) by channel position: DNA-like first channel blue, then green, red, magenta.
CHANNEL_COLOURS = np.array([[0.2, 0.4, 1.0], [0.1, 1.0, 0.1], [1.0, 0.2, 0.2], [1.0, 0.2, 1.0]])


def display_rgb(image: np.ndarray) -> np.ndarray:
    """C x H x W in [0, 1] -> H x W x 3: one channel grey, more channels additive colours."""
    if image.shape[0] == 1:
        return np.repeat(image[0, :, :, None], 3, axis=2)
    colours = CHANNEL_COLOURS[np.arange(image.shape[0]) % len(CHANNEL_COLOURS)]
    return np.clip(np.einsum("chw,ck->hwk", image, colours), 0, 1)


def html_table(frame: pd.DataFrame, title: str) -> str:
    """A small standalone HTML page holding one table."""
    table = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    return f"<html><body><h3>{html.escape(title)}</h3>{table}</body></html>\n"


def annotation_figure(
    image_set: ImageSet, annotations: Mapping[str, Any], path: str | Path, limit: int = 3
) -> None:
    """The displayed images with prototype boxes, positives (dots), negatives (crosses) per
    class colour, background patches (white squares; flagged non-background in orange)."""
    shown = annotations["displayed"][:limit]
    figure, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 5.4), squeeze=False)
    for axis, name in zip(axes[0], shown, strict=True):
        axis.imshow(display_rgb(image_set.images[name]))
        axis.set_title(name, fontsize=9)
        axis.axis("off")
        for index, entry in enumerate(annotations["classes"]):
            colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
            for box in entry["prototypes"]:
                if box["image"] == name:
                    axis.add_patch(
                        Rectangle(
                            (box["x"], box["y"]),
                            box["width"],
                            box["height"],
                            fill=False,
                            edgecolor=colour,
                            linewidth=2,
                        )
                    )
            for kind, marker in (("positives", "o"), ("negatives", "x")):
                points = [p for p in entry[kind] if p["image"] == name]
                if points:
                    axis.scatter(
                        [p["x"] for p in points],
                        [p["y"] for p in points],
                        s=22,
                        marker=marker,
                        color=colour,
                        linewidths=1.5,
                        label=f"{entry['name']} {kind}",
                    )
        flagged = {
            (p["image"], p["x"], p["y"]) for p in annotations["background"]["not_background"]
        }
        for point in annotations["background"]["proposed"]:
            if point["image"] == name:
                colour = "orange" if (name, point["x"], point["y"]) in flagged else "white"
                axis.scatter(
                    [point["x"]],
                    [point["y"]],
                    s=18,
                    marker="s",
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=1,
                )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    save_figure(figure, path, dpi=80)


def pr_figure(curves: Mapping[str, pd.DataFrame], path: str | Path) -> None:
    """Precision-recall curves, one panel per class, one line per model."""
    classes = sorted({name for frame in curves.values() for name in frame["class"].unique()})
    figure, axes = plt.subplots(
        1, max(len(classes), 1), figsize=(4.5 * max(len(classes), 1), 4), squeeze=False
    )
    for axis, name in zip(axes[0], classes, strict=False):
        for model, frame in curves.items():
            mine = frame[frame["class"] == name]
            axis.plot(
                np.r_[0, mine["recall"]],
                np.r_[1, mine["precision"]],
                label=model,
                drawstyle="steps-post",
            )
        axis.set_title(name)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(0, 1.02)
        axis.legend(fontsize=8)
    save_figure(figure, path)


def prototype_curve_figure(summary: pd.DataFrame, chance: float, path: str | Path) -> None:
    """Per-cell call accuracy against examples per class, one line per head and strategy
    (mean ± std over the draws), chance dashed."""
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for (head, strategy), rows in summary.groupby(["head", "strategy"], sort=True):
        axis.errorbar(
            rows["prototypes"],
            100 * rows["accuracy_mean"],
            yerr=100 * rows["accuracy_std"].fillna(0),
            marker="o",
            capsize=3,
            label=f"{head}, {strategy}",
        )
    axis.axhline(100 * chance, color="grey", linestyle="--", label="chance")
    axis.set_xticks(sorted(summary["prototypes"].unique()))
    axis.set(xlabel="labelled cells per class", ylabel="accuracy on the other cells (%)")
    axis.set_ylim(0, 100)
    axis.legend(frameon=False, loc="lower right")
    save_figure(figure, path)
