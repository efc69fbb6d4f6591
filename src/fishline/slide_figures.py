"""Figures and report pages of the slide calls: field overlays, a review gallery of the
least certain cells, a card per sample and the set's summary table."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.io import atomic_outputs
from fishline.plots import CLASS_COLOURS, plt, save_figure

BORDER_COLOUR = (0.55, 0.55, 0.55)


def _display(channels: np.ndarray) -> np.ndarray:
    """Red/green/DAPI in [0, 1] -> RGB (H x W x 3), each channel stretched from its median
    (the background) to its 99.8th percentile, so haze and camera offsets stay dark and dim
    12-bit data and painted fields look alike."""
    out = np.empty((*channels.shape[1:], 3), np.float32)
    for index, channel in enumerate(channels):
        low, top = np.percentile(channel, [50, 99.8])
        out[..., index] = np.clip((channel - low) / max(float(top - low), 1e-3), 0, 1)
    return out


def class_colour(index: int) -> tuple[float, float, float]:
    """RGB colour of class ``index`` (the report's class palette)."""
    code = CLASS_COLOURS[index % len(CLASS_COLOURS)].lstrip("#")
    return tuple(int(code[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def outline_colour(
    predicted: int, certainty: float, min_certainty: float
) -> tuple[float, float, float]:
    """Class colour faded toward grey as certainty falls (below the threshold: mostly grey)."""
    weight = float(np.clip(certainty, 0, 1))
    if certainty < min_certainty:
        weight *= 0.5
    colour = np.asarray(class_colour(predicted))
    grey = np.full(3, 0.6)
    return tuple(grey + (colour - grey) * (0.25 + 0.75 * weight))  # type: ignore[return-value]


def draw_outlines(
    rgb: np.ndarray, labels: np.ndarray, colours: Mapping[int, tuple[float, float, float]]
) -> np.ndarray:
    """Draw each labelled instance's outline (2 px) in its colour onto a copy of ``rgb``."""
    out = np.ascontiguousarray(rgb.copy())
    for cell, colour in colours.items():
        mask = (labels == cell).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, colour, 2)
    return out


def overlay_figure(
    panels: Sequence[tuple[Any, np.ndarray, pd.DataFrame]],
    cells: pd.DataFrame,
    classes: Sequence[str],
    min_certainty: float,
    path: str | Path,
) -> None:
    """One panel per field: nucleus outlines coloured by predicted class and faded by
    uncertainty; nuclei cut by the border (not called) in grey."""
    count = max(len(panels), 1)
    columns = min(count, 3)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 6 * rows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (item, labels, table) in zip(axes.ravel(), panels, strict=False):
        part = cells[cells["field"] == item.field]
        colours: dict[int, tuple[float, float, float]] = {
            int(c): BORDER_COLOUR for c in table.loc[table["border"], "cell"]
        }
        for row in part.itertuples():
            if pd.notna(row.prediction):
                colours[int(row.cell)] = outline_colour(
                    int(row.prediction), float(row.certainty), min_certainty
                )
        ax.imshow(draw_outlines(_display(item.channels), labels, colours))
        called = len(part)
        uncertain = int((part["certainty"] < min_certainty).sum()) if called else 0
        ax.set_title(
            f"{item.sample} / {item.field}: {called} called, {uncertain} uncertain, "
            f"{int(table['border'].sum())} at border",
            fontsize=9,
        )
    handles = [
        plt.Line2D([], [], color=class_colour(i), lw=3, label=name)
        for i, name in enumerate(classes)
    ]
    handles.append(plt.Line2D([], [], color=BORDER_COLOUR, lw=3, label="border (excluded)"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    figure.suptitle("outline colour = predicted class; paler = less certain", fontsize=10)
    save_figure(figure, path, dpi=90)


def sample_card(
    summary: Mapping[str, Any],
    classes: Sequence[str],
    calls: Mapping[str, Any],
    timing: Mapping[str, Any],
    path: str | Path,
) -> None:
    """A sample's report card (HTML): verdict, the rule, counts and fractions per class.

    Seconds stay in ``timing.json`` only, so the card is the same bytes on every run.
    """
    from fishline.slides import rule_text

    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{summary[f'n_{name}']}</td>"
        f"<td>{summary[f'fraction_{name}']:.1%}</td></tr>"
        for name in classes
    )
    seg = timing.get("segmentation")
    seg_line = (
        f"<p>Nucleus segmentation against the truth masks: AP@0.5 {seg['ap@0.5']:.3f}, "
        f"AP@0.75 {seg['ap@0.75']:.3f}.</p>"
        if seg
        else ""
    )
    accuracy = summary.get("accuracy_matched")
    accuracy_line = (
        f"<p>Accuracy of the per-cell calls on truth-matched cells: {accuracy:.1%}.</p>"
        if accuracy is not None and pd.notna(accuracy)
        else ""
    )
    text = (
        f"<html><body><h2>{html.escape(str(summary['sample']))}: "
        f"{html.escape(str(summary['verdict']))}</h2>"
        f"<p>{summary['fields']} field(s), {summary['cells']} cells called (nuclei cut by "
        f"the border excluded), {summary['certain']} certain, {summary['uncertain']} set aside "
        f"as uncertain.</p>"
        f"<table border='1'><tr><th>class</th><th>certain cells</th><th>fraction</th></tr>"
        f"{rows}</table>"
        f"<p><b>Rule.</b> {html.escape(rule_text(calls))}</p>{seg_line}{accuracy_line}"
        "</body></html>"
    )
    with atomic_outputs(path) as (temp,):
        temp.write_text(text)


def summary_html(summary: pd.DataFrame, rule: str, name: str, path: str | Path) -> None:
    """The set's per-sample table with the verdict rule stated above it."""
    table = summary.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    text = (
        f"<html><body><h2>MYCN calls: {html.escape(name)}</h2>"
        f"<p><b>Rule.</b> {html.escape(rule)}</p>{table}</body></html>"
    )
    with atomic_outputs(path) as (temp,):
        temp.write_text(text)


def uncertain_gallery(
    cells: pd.DataFrame, crops: Mapping[str, np.ndarray], count: int, path: str | Path
) -> None:
    """The ``count`` least certain cells of a set (their classifier crops), for review."""
    ranked = cells.dropna(subset=["certainty"]).sort_values(
        ["certainty", "sample", "index"], kind="stable"
    )
    chosen = ranked.head(count)
    columns = 8
    rows = max(1, -(-len(chosen) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 2.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), chosen.itertuples(), strict=False):
        image = crops[row.sample][int(row.index)].astype(np.float32) / 65535
        ax.imshow(_display(image))
        ax.set_title(
            f"{row.sample}/{row.field}#{row.cell}\n{row.predicted_class} c={row.certainty:.2f}",
            fontsize=6,
        )
    if len(chosen) == 0:
        axes[0, 0].text(0, 0.5, "no cells called", fontsize=9)
    figure.suptitle("least certain cells first (for review)", fontsize=9)
    save_figure(figure, path, dpi=90)
