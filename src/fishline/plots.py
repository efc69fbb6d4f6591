"""Report figures (PNG, matplotlib/seaborn): galleries, counts, histograms, overlays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tifffile
from skimage.segmentation import find_boundaries

from fishline.io import atomic_outputs, read_patch_set
from fishline.paint.fish import assign_conditions, render_patches
from fishline.paint.fish_settings import FishPaintSettings
from fishline.paint.optics import quantise
from fishline.sheets import read_sample_sheet

CLASS_COLOURS = ["#2b8cbe", "#fdae61", "#d7191c", "#1a9641", "#984ea3", "#ff7f00"]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Red/green/DAPI (3 x H x W, any integer depth) -> displayable RGB in [0, 1]."""
    data = image.astype(np.float32)
    top = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
    if top > 255:  # 12/16-bit: stretch to the data, not to an unused range
        top = max(float(np.percentile(data, 99.9)), 1.0)
    return np.clip(data / top, 0, 1).transpose(1, 2, 0)


def save_figure(figure: plt.Figure, path: str | Path, dpi: int = 150) -> None:
    """Write a figure as PNG atomically and free it."""
    with atomic_outputs(path) as (temp,):
        figure.savefig(temp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(figure)


def class_gallery(
    stacks: Sequence[str], tables: Sequence[str], per_class: int, path: str | Path
) -> None:
    """One row per (split, class) with ``per_class`` examples and their drawn counts."""
    rows = []
    for stack, table in zip(stacks, tables, strict=True):
        images, frame = read_patch_set(stack, table)
        for name, group in frame.groupby("class_name", sort=False):
            rows.append(
                (
                    f"{frame['split'].iloc[0]}\n{name}",
                    images[group["index"][:per_class]],
                    group.head(per_class),
                )
            )
    figure, axes = plt.subplots(
        len(rows), per_class, figsize=(1.6 * per_class, 1.8 * len(rows)), squeeze=False
    )
    for row, (label, images, group) in enumerate(rows):
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col < len(images):
                ax.imshow(to_rgb(images[col]))
                entry = group.iloc[col]
                ax.set_title(
                    f"{entry['condition']} t{entry['target_spots']}+{entry['target_clusters']}c",
                    fontsize=7,
                )
        axes[row, 0].text(
            -0.1, 0.5, label, transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=8
        )
    save_figure(figure, path, dpi=110)  # many panels: keep the report light


def realism_gallery(
    paint: FishPaintSettings, seed: int, path: str | Path, columns: int = 6
) -> None:
    """The same nuclei rendered with no realism, each knob alone, and everything on."""
    settings = paint.for_split("train")
    knobs = list(settings.realism)
    off = {knob: {**value, "enabled": False} for knob, value in settings.realism.items()}
    variants = [("no realism", off)]
    variants += [(knob, {**off, knob: {**off[knob], "enabled": True}}) for knob in knobs]
    variants.append(("all knobs", settings.realism))
    cond = assign_conditions(np.random.default_rng(seed), settings.conditions, columns)
    figure, axes = plt.subplots(
        len(variants), columns, figsize=(1.6 * columns, 1.7 * len(variants))
    )
    for row, (label, realism) in enumerate(variants):
        images, _, _ = render_patches(
            np.random.default_rng(seed), replace(settings, realism=realism), cond
        )
        shown = quantise(images, 8)
        for col in range(columns):
            axes[row, col].imshow(to_rgb(shown[col]))
            axes[row, col].axis("off")
        axes[row, 0].text(
            -0.1,
            0.5,
            label.replace("_", " "),
            transform=axes[row, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    save_figure(figure, path)


def condition_gallery(
    paint: FishPaintSettings, seed: int, path: str | Path, columns: int = 6
) -> None:
    """One row per painter condition (with the train split's realism), each panel titled
    with what was drawn: spots, clusters, double minutes and signal clouds of the target."""
    settings = paint.for_split("train")
    conditions = settings.conditions
    figure, axes = plt.subplots(
        len(conditions), columns, figsize=(1.6 * columns, 1.8 * len(conditions)), squeeze=False
    )
    for row, condition in enumerate(conditions):
        cond = np.full(columns, row)
        images, _, record = render_patches(np.random.default_rng(seed + row), settings, cond)
        shown = quantise(images, 8)
        for col, ax in enumerate(axes[row]):
            ax.imshow(to_rgb(shown[col]))
            ax.axis("off")
            drawn = [f"{record['target_spots'][col]}s", f"{record['target_clusters'][col]}c"]
            drawn += [
                f"{record[key][col]}{letter}"
                for key, letter in (("target_minutes", "m"), ("target_clouds", "cl"))
                if key in record
            ]
            ax.set_title(" ".join(drawn), fontsize=7)
        axes[row, 0].text(
            -0.1,
            0.5,
            f"{condition.name}\n({condition.class_})",
            transform=axes[row, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    save_figure(figure, path)


def class_counts(tables: Sequence[str], path: str | Path) -> None:
    """Images per class and split (bars)."""
    import seaborn as sns  # 0.7 s to import: only the painter report plots with it

    frame = pd.concat([pd.read_parquet(t, columns=["split", "class_name"]) for t in tables])
    figure, ax = plt.subplots(figsize=(6, 3))
    sns.countplot(data=frame, x="split", hue="class_name", ax=ax, palette=CLASS_COLOURS[:3])
    ax.set_ylabel("images")
    ax.legend(title="class", fontsize=8)
    save_figure(figure, path)


def signal_counts(tables: Sequence[str], path: str | Path) -> None:
    """Histograms of drawn target spots, target clusters and reference spots per condition."""
    import seaborn as sns  # 0.7 s to import: only the painter report plots with it

    frame = pd.concat([pd.read_parquet(t) for t in tables], ignore_index=True)
    columns = ["target_spots", "target_clusters", "reference_spots"]
    figure, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3))
    for ax, column in zip(axes, columns, strict=True):
        sns.histplot(
            data=frame,
            x=column,
            hue="condition",
            discrete=True,
            multiple="stack",
            ax=ax,
            legend=ax is axes[-1],
        )
        ax.set_xlabel(column.replace("_", " "))
    save_figure(figure, path)


def fields_overview(sheet: str, nuclei: str, classes: Sequence[str], path: str | Path) -> None:
    """Each painted field with nucleus outlines coloured by class."""
    table = read_sample_sheet(sheet, "fields_sheet")
    truth = pd.read_parquet(nuclei)
    figure, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 5), squeeze=False)
    for ax, row in zip(axes[0], table.itertuples(), strict=True):
        image = tifffile.imread(row.image)
        labels = tifffile.imread(row.mask)
        rgb = to_rgb(image).copy()
        rows = truth[truth["field"] == row.sample]
        colour_of = dict(zip(rows["label"], rows["class_name"], strict=True))
        edges = find_boundaries(labels, mode="inner")
        for label, name in colour_of.items():
            colour = matplotlib.colors.to_rgb(CLASS_COLOURS[list(classes).index(name)])
            rgb[edges & (labels == label)] = colour
        ax.imshow(rgb)
        ax.set_title(f"{row.sample}: status {row.status}, {len(rows)} nuclei", fontsize=9)
        ax.axis("off")
    handles = [
        matplotlib.patches.Patch(color=CLASS_COLOURS[i], label=name)
        for i, name in enumerate(classes)
    ]
    axes[0, -1].legend(handles=handles, loc="lower right", fontsize=8)
    save_figure(figure, path)


def painter_figures(
    stacks: Sequence[str],
    tables: Sequence[str],
    fields_sheet: str,
    fields_nuclei: str,
    paint: FishPaintSettings,
    per_class: int,
    seed: int,
    outputs: dict[str, str],
) -> None:
    """All figures of the FISH painter's report section."""
    class_gallery(stacks, tables, per_class, outputs["gallery"])
    realism_gallery(paint, seed, outputs["realism"])
    condition_gallery(paint, seed, outputs["conditions"])
    class_counts(tables, outputs["class_counts"])
    signal_counts(tables, outputs["signal_counts"])
    fields_overview(fields_sheet, fields_nuclei, paint.classes, outputs["fields"])
