"""Figures and report pages of the slide calls: field overlays, a review gallery of the
most and least certain cells per class, a card per sample and the set's summary table."""

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
from fishline.slides.verdicts import CallSettings, rule_text

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


def _dashed(image: np.ndarray, contour: np.ndarray, colour: tuple, dash: int = 5) -> None:
    """Draw ``contour`` as a dashed 2 px line (``dash`` outline pixels on, ``dash`` off)."""
    points = contour.reshape(-1, 2)
    for start in range(0, len(points), 2 * dash):
        segment = points[start : start + dash + 1]
        if len(segment) > 1:
            cv2.polylines(image, [segment.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)


def draw_outlines(
    rgb: np.ndarray,
    labels: np.ndarray,
    styles: Mapping[int, tuple[tuple[int, int, int], str]],
) -> np.ndarray:
    """Outlines onto a copy of ``rgb`` (uint8): per instance a colour and a style, ``solid``
    (2 px), ``dashed`` (2 px, with a ``?`` at the centre) or ``thin`` (1 px)."""
    out = np.ascontiguousarray(rgb.copy())
    for cell, (colour, style) in styles.items():
        mask = (labels == cell).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if style == "dashed":
            for contour in contours:
                _dashed(out, contour, colour)
            ys, xs = np.nonzero(mask)
            if len(xs):
                centre = (int(xs.mean()) - 5, int(ys.mean()) + 6)
                cv2.putText(out, "?", centre, cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
        else:
            cv2.drawContours(out, contours, -1, colour, 2 if style == "solid" else 1, cv2.LINE_AA)
    return out


def _bytes_colour(colour: Sequence[float]) -> tuple[int, int, int]:
    return tuple(round(255 * c) for c in colour)  # type: ignore[return-value]


def _strip(
    width: int, lines: Sequence[Sequence[tuple[str, tuple[int, int, int], str]]]
) -> np.ndarray:
    """A dark band of text lines; each line is (text, colour, style) items, a style other than
    ``text`` drawing a short line sample before its text."""
    band = np.full((22 * len(lines) + 8, width, 3), 24, np.uint8)
    for row, items in enumerate(lines):
        x, y = 8, 22 * row + 20
        for text, colour, style in items:
            if style == "solid":
                cv2.line(band, (x, y - 5), (x + 24, y - 5), colour, 2, cv2.LINE_AA)
            elif style == "dashed":
                for start in range(x, x + 24, 10):
                    cv2.line(band, (start, y - 5), (start + 5, y - 5), colour, 2, cv2.LINE_AA)
            elif style == "thin":
                cv2.line(band, (x, y - 5), (x + 24, y - 5), colour, 1, cv2.LINE_AA)
            x += 30 if style != "text" else 0
            cv2.putText(band, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
            x += cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] + 16
    return band


def overlay_image(
    panels: Sequence[tuple[Any, np.ndarray, pd.DataFrame]],
    cells: pd.DataFrame,
    classes: Sequence[str],
    min_certainty: float,
) -> np.ndarray:
    """A sample's fields at their native resolution, one under the other (RGB uint8): nucleus
    outlines in the predicted class's colour, solid when certain, dashed with a ``?`` when
    below ``min_certainty``, thin grey for nuclei cut by the border (not called); a legend
    band above the fields and a title band above each, never over the image."""
    white = (235, 235, 235)
    legend = [
        [("outline colour = predicted class:", white, "text")]
        + [(name, _bytes_colour(class_colour(i)), "solid") for i, name in enumerate(classes)],
        [
            (f"certain (>= {min_certainty:.2f})", white, "solid"),
            ("uncertain", white, "dashed"),
            ("cut by the border, not called", _bytes_colour(BORDER_COLOUR), "thin"),
        ],
    ]
    parts = []
    for item, labels, table in panels:
        part = cells[cells["field"] == item.field]
        styles: dict[int, tuple[tuple[int, int, int], str]] = {
            int(c): (_bytes_colour(BORDER_COLOUR), "thin")
            for c in table.loc[table["border"], "cell"]
        }
        for row in part.itertuples():
            if pd.notna(row.prediction):
                certain = float(row.certainty) >= min_certainty
                colour = _bytes_colour(class_colour(int(row.prediction)))
                styles[int(row.cell)] = (colour, "solid" if certain else "dashed")
        rgb = (_display(item.channels) * 255).astype(np.uint8)
        uncertain = int((part["certainty"] < min_certainty).sum()) if len(part) else 0
        title = (
            f"{item.sample} / {item.field}: {len(part)} called, {uncertain} uncertain, "
            f"{int(table['border'].sum())} at border"
        )
        parts.append((title, draw_outlines(rgb, labels, styles)))
    width = max([drawn.shape[1] for _, drawn in parts] + [720])
    bands = [_strip(width, legend)]
    for title, drawn in parts:
        bands.append(_strip(width, [[(title, white, "text")]]))
        bands.append(
            np.pad(drawn, ((0, 0), (0, width - drawn.shape[1]), (0, 0)), constant_values=24)
        )
    return np.concatenate(bands, axis=0)


def overlay_figure(
    panels: Sequence[tuple[Any, np.ndarray, pd.DataFrame]],
    cells: pd.DataFrame,
    classes: Sequence[str],
    min_certainty: float,
    path: str | Path,
) -> None:
    """Write :func:`overlay_image` as a PNG at the fields' native resolution."""
    image = overlay_image(panels, cells, classes, min_certainty)
    with atomic_outputs(path) as (temp,):
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"{path}: PNG encoding failed")
        Path(temp).write_bytes(encoded.tobytes())


def sample_card(
    summary: Mapping[str, Any],
    classes: Sequence[str],
    calls: CallSettings,
    timing: Mapping[str, Any],
    path: str | Path,
    caution: str = "",
) -> None:
    """A sample's report card (HTML): verdict, the rule, counts and fractions per class, and
    a ``caution`` line when the calls are outside the classifier's domain.

    Seconds stay in ``timing.json`` only, so the card is the same bytes on every run.
    """
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
        + (f"<p><b>Caution.</b> {html.escape(caution)}</p>" if caution else "")
        + f"<p><b>Rule.</b> {html.escape(rule_text(calls))}</p>{seg_line}{accuracy_line}"
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


def gallery_rows(
    cells: pd.DataFrame, classes: Sequence[str], per_row: int
) -> list[tuple[str, pd.DataFrame]]:
    """The review gallery's rows: per called class (in ``classes`` order; a class no cell was
    called is left out) its ``per_row`` most certain cells, most certain first, then its
    ``per_row`` least certain, least certain first."""
    called = cells.dropna(subset=["certainty"])
    rows = []
    for name in classes:
        ranked = called[called["predicted_class"] == name].sort_values(
            ["certainty", "sample", "index"], ascending=[False, True, True], kind="stable"
        )
        if len(ranked):
            rows.append((f"{name}: most certain", ranked.head(per_row)))
            rows.append((f"{name}: least certain", ranked.tail(per_row).iloc[::-1]))
    return rows


def certainty_gallery(
    cells: pd.DataFrame,
    crops: Mapping[str, np.ndarray],
    classes: Sequence[str],
    per_row: int,
    path: str | Path,
) -> None:
    """Per called class, a row of its ``per_row`` most certain cells and a row of its least
    certain ones (their classifier crops), each with the class probabilities: what the
    classifier is sure of beside where it hesitates, for review."""
    rows = gallery_rows(cells, classes, per_row)
    figure, axes = plt.subplots(
        max(1, len(rows)), per_row, figsize=(1.7 * per_row, 2.1 * max(1, len(rows))),
        squeeze=False,
    )  # fmt: skip
    for ax in axes.ravel():
        ax.axis("off")
    short = "/".join(name[:3] for name in classes)
    for (label, chosen), axes_row in zip(rows, axes, strict=False):
        axes_row[0].text(
            -0.08, 0.5, label, transform=axes_row[0].transAxes, rotation=90,
            ha="right", va="center", fontsize=7,
        )  # fmt: skip
        for ax, row in zip(axes_row, chosen.itertuples(), strict=False):
            image = crops[row.sample][int(row.index)].astype(np.float32) / 65535
            ax.imshow(_display(image))
            probabilities = "/".join(f"{getattr(row, f'p_{name}'):.2f}" for name in classes)
            ax.set_title(
                f"{row.sample}/{row.field}#{row.cell}\nc={row.certainty:.2f} "
                f"{short}\n{probabilities}",
                fontsize=5.5,
            )
    if not rows:
        axes[0, 0].text(0, 0.5, "no cells called", fontsize=9)
    figure.suptitle(
        "per called class: most certain cells, then least certain (c = certainty, "
        "then the class probabilities)",
        fontsize=8,
    )
    save_figure(figure, path, dpi=120)
