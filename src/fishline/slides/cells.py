"""From a field's nucleus labels to cells: the nucleus table, the crops in the classifier's
patch geometry and, where truth exists, each cell's true class."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.instances import (
    match_instances,
)
from fishline.paint.draws import bounds
from fishline.schema import setting_default, typed_settings

UNKNOWN = "unknown"  # class_name of a cell without truth
MATCH_IOU = 0.5


@dataclass(frozen=True)
class CropIntensity:
    """How a field's channels are put in the classifier's units: by the image's bit depth
    (``bit_depth``) or stretched per channel between two ``percentiles`` (``percentile``,
    for real data whose exposure differs from the painter's)."""

    mode: Literal["bit_depth", "percentile"] = setting_default("slides.crops.intensity.mode")
    percentiles: tuple[float, float] = setting_default("slides.crops.intensity.percentiles")


@dataclass(frozen=True)
class CropSettings:
    """How cells are cut from a field (config block ``slides.crops``; each default is the
    schema's, its meaning in config/README.md): the zoom (``scale``: ``nucleus``,
    ``pixel_size`` or ``none``; ``diameter``, the target nucleus diameter, None = the
    painter's typical one), what is kept ``outside`` the nucleus, and the intensity
    scaling."""

    scale: Literal["nucleus", "pixel_size", "none"] = setting_default("slides.crops.scale")
    diameter: float | None = setting_default("slides.crops.diameter")
    outside: Literal["keep", "zero"] = setting_default("slides.crops.outside")
    intensity: CropIntensity = field(default_factory=CropIntensity)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CropSettings:
        """The settings of a ``slides.crops`` block (every key given)."""
        return typed_settings(cls, block, "slides.crops")


def border_labels(labels: np.ndarray) -> np.ndarray:
    """Ids of the instances that touch the image border (cut by it: excluded from calls).

    Parameters
    ----------
    labels : numpy.ndarray
        (H, W) integer instance labels, 0 = background.

    Returns
    -------
    numpy.ndarray
        Sorted unique ids (dtype of ``labels``) with a pixel on the outer row or column.
    """
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.unique(edge[edge > 0])


def nucleus_table(labels: np.ndarray) -> pd.DataFrame:
    """One row per instance: id, centre, area, equivalent diameter, border flag.

    Parameters
    ----------
    labels : numpy.ndarray
        (H, W) integer nucleus labels, 0 = background.

    Returns
    -------
    pandas.DataFrame
        Rows in id order: ``cell`` (int64 id), ``centre_x`` and ``centre_y`` (float, mean
        pixel position, px), ``area`` (int64, px), ``diameter`` (float, equivalent circle,
        px) and ``border`` (bool, see :func:`border_labels`); empty with these columns when
        there are no instances.
    """
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

    Parameters
    ----------
    nuclei : mapping of str to Any
        The painter's nucleus settings; ``diameter`` (px) and ``aspect`` are each a number
        or a [low, high] range.

    Returns
    -------
    float
        Equivalent-circle diameter, px.
    """
    low, high = bounds(nuclei["diameter"])
    a_low, a_high = bounds(nuclei["aspect"])
    return float((low + high) / 2 * math.sqrt((a_low + a_high) / 2))


def crop_scale(diameter: float, mode: str, reference: float, pixel_ratio: float | None) -> float:
    """Zoom that brings one nucleus to the classifier's training geometry.

    ``nucleus``: its diameter becomes ``reference``; ``pixel_size``: the field's pixel size
    over the painter's (``pixel_ratio``); ``none``: 1.

    Parameters
    ----------
    diameter : float
        The nucleus's equivalent diameter, px (below 1 counts as 1).
    mode : str
        ``nucleus``, ``pixel_size`` or ``none`` (:attr:`CropSettings.scale`).
    reference : float
        Target nucleus diameter, px (see :func:`reference_diameter`).
    pixel_ratio : float or None
        Field pixel size over the painter's; needed for ``pixel_size``.

    Returns
    -------
    float
        Zoom factor (> 1 enlarges the nucleus).

    Raises
    ------
    InputError
        If ``scale`` is ``pixel_size`` and ``pixel_ratio`` is None.
    """
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

    Parameters
    ----------
    channels : numpy.ndarray
        (C, H, W) float field in [0, 1] (C = 3 for the slide classifier).
    labels : numpy.ndarray
        (H, W) integer nucleus labels, 0 = background.
    cells : pandas.DataFrame
        N cells with ``cell`` (label id), ``centre_x`` and ``centre_y`` (px), as
        :func:`nucleus_table` gives.
    size : int
        Crop side, px.
    scales : numpy.ndarray
        (N,) zoom of each cell (see :func:`crop_scale`).
    outside : str
        ``'keep'`` or ``'zero'`` (any other value keeps).

    Returns
    -------
    numpy.ndarray
        (N, C, size, size) float32 crops clipped to [0, 1].
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
    """Truth instance (IoU >= 0.5 match) and its class for every predicted cell.

    Parameters
    ----------
    truth : numpy.ndarray or None
        (H, W) integer truth labels, 0 = background; None when the field has no truth.
    pred : numpy.ndarray
        (H, W) integer predicted labels, same shape.
    cells : pandas.DataFrame
        The predicted cells, with ``cell`` (label id in ``pred``).
    labels_table : pandas.DataFrame or None
        Truth ``label`` (int) to ``class_name``; None leaves every class ``UNKNOWN``.

    Returns
    -------
    pandas.DataFrame
        One row per cell: ``cell``, ``truth_cell`` (matched truth id, 0 = none), ``iou``
        (0.0 = none) and ``truth_class`` (``UNKNOWN`` when unmatched or unlisted).
    """
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
