"""Instance matching and scores: predicted against truth labels by IoU (TP/FP/FN, AP, F1 at
IoU 0.5 and 0.75), per image and pooled over a set.

About 420 lines, more than half of them the numpydoc of its public API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

from fishline.images import read_labels
from fishline.io import atomic_outputs
from fishline.metaphase_sheet import load_row

IOU_THRESHOLDS = (0.5, 0.75)


def overlap_counts(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixels shared by truth label i (rows) and predicted label j (columns), background 0
    included as row and column 0.

    Parameters
    ----------
    truth : numpy.ndarray
        (H, W) non-negative integer truth labels, 0 = background.
    pred : numpy.ndarray
        (H, W) non-negative integer predicted labels, same shape.

    Returns
    -------
    numpy.ndarray
        (truth.max() + 1, pred.max() + 1) int64 pixel counts.
    """
    overlap = np.zeros((int(truth.max()) + 1, int(pred.max()) + 1), np.int64)
    np.add.at(overlap, (truth.ravel(), pred.ravel()), 1)
    return overlap


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every truth instance (rows) with every predicted instance (columns).

    Parameters
    ----------
    truth : numpy.ndarray
        (H, W) non-negative integer truth labels, 0 = background.
    pred : numpy.ndarray
        (H, W) non-negative integer predicted labels, same shape.

    Returns
    -------
    numpy.ndarray
        (truth.max(), pred.max()) float64 IoU in [0, 1]; label i is row (column) i - 1, and
        ids absent from an image give rows (columns) of zeros.
    """
    overlap = overlap_counts(truth, pred)
    true_area = overlap.sum(axis=1, keepdims=True)
    pred_area = overlap.sum(axis=0, keepdims=True)
    union = true_area + pred_area - overlap
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, overlap / union, 0.0)
    return iou[1:, 1:]


def match_instances(truth: np.ndarray, pred: np.ndarray, threshold: float) -> pd.DataFrame:
    """One-to-one matches with IoU >= ``threshold`` (optimal assignment on IoU).

    At thresholds >= 0.5 a match is unique anyway; the assignment keeps lower thresholds
    correct too.

    Parameters
    ----------
    truth : numpy.ndarray
        (H, W) non-negative integer truth labels, 0 = background.
    pred : numpy.ndarray
        (H, W) non-negative integer predicted labels, same shape.
    threshold : float
        Least IoU (0-1) of a match.

    Returns
    -------
    pandas.DataFrame
        One row per match (truth, pred, iou) with 1-based ids (the label values); empty when
        either image has no labels.
    """
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(truth, pred)
    if iou.size == 0:
        return pd.DataFrame({"truth": [], "pred": [], "iou": []})
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= threshold
    return pd.DataFrame(
        {"truth": rows[keep] + 1, "pred": cols[keep] + 1, "iou": iou[rows, cols][keep]}
    )


def instance_scores(truth: np.ndarray, pred: np.ndarray, threshold: float) -> dict[str, float]:
    """TP, FP, FN, AP (= TP / (TP + FP + FN), Cellpose's definition) and F1 at one IoU.

    Parameters
    ----------
    truth : numpy.ndarray
        (H, W) integer truth labels, 0 = background; ids need not be consecutive.
    pred : numpy.ndarray
        (H, W) integer predicted labels, same shape.
    threshold : float
        Least IoU (0-1) for a predicted instance to match a truth instance.

    Returns
    -------
    dict of str to float
        ``tp``, ``fp``, ``fn`` (instance counts, int) and ``ap``, ``f1``, ``precision``,
        ``recall`` (0-1), as :func:`score_ratios`.
    """
    n_true = len(np.unique(truth[truth > 0]))
    n_pred = len(np.unique(pred[pred > 0]))
    tp = len(match_instances(_relabel(truth), _relabel(pred), threshold))
    fp, fn = n_pred - tp, n_true - tp
    return {"tp": tp, "fp": fp, "fn": fn, **score_ratios(tp, fp, fn)}


def score_ratios(tp: int, fp: int, fn: int) -> dict[str, float]:
    """AP, F1, precision and recall from matched (TP) and unmatched (FP, FN) counts.

    Parameters
    ----------
    tp : int
        Matched instances.
    fp : int
        Predicted instances without a match.
    fn : int
        Truth instances without a match.

    Returns
    -------
    dict of str to float
        ``ap`` and ``f1`` (1.0 when all counts are 0), ``precision`` and ``recall`` (0.0
        when undefined), all in [0, 1].
    """
    total = tp + fp + fn
    return {
        "ap": tp / total if total else 1.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if total else 1.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive ids 1..n (gaps in label ids would waste IoU matrix rows)."""
    values, inverse = np.unique(labels, return_inverse=True)
    out = inverse.reshape(labels.shape).astype(np.int32)
    return out if values[0] == 0 else out + 1


def pooled_scores(frame: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Scores of a set of images from its per-image rows: the ``{prefix}tp``, ``fp`` and
    ``fn`` columns summed before the ratios (so large images weigh by their instances).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per image with integer count columns ``{prefix}tp``, ``{prefix}fp`` and
        ``{prefix}fn``.
    prefix : str, optional
        Prefix of the count columns (default none).

    Returns
    -------
    dict of str to float
        Summed ``tp``, ``fp``, ``fn`` (int) and their :func:`score_ratios`.
    """
    tp, fp, fn = (int(frame[f"{prefix}{key}"].sum()) for key in ("tp", "fp", "fn"))
    return {"tp": tp, "fp": fp, "fn": fn, **score_ratios(tp, fp, fn)}


def object_diameter(labels: np.ndarray, min_area: int = 1) -> float:
    """Cellpose's object diameter of a label image: the median over instances of the diameter
    of a disc with the instance's area (instances under ``min_area`` px left out); 0 if none.

    Parameters
    ----------
    labels : numpy.ndarray
        (H, W) integer instance labels, 0 = background.
    min_area : int, optional
        Least instance area counted, px (default 1).

    Returns
    -------
    float
        Median equivalent-disc diameter, px; 0.0 without instances.
    """
    _, areas = np.unique(labels[labels > 0], return_counts=True)
    areas = areas[areas >= min_area]
    if len(areas) == 0:
        return 0.0
    return float(np.median(np.sqrt(areas)) / (np.sqrt(np.pi) / 2))


def otsu_foreground(dapi: np.ndarray) -> np.ndarray:
    """Everything stained: Otsu threshold of the DAPI image smoothed at 1 px (uint8 0/1).

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) DAPI image, any numeric dtype (min-max scaled to 0-255 for the threshold).

    Returns
    -------
    numpy.ndarray
        (H, W) uint8 mask, 1 = stained.
    """
    image = cv2.GaussianBlur(dapi.astype(np.float32), (0, 0), 1.0)
    scaled = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, foreground = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return foreground


def half_maximum_objects(dapi: np.ndarray, bright: float = 90.0) -> np.ndarray:
    """Stained objects each cut at half its own brightness (int32 labels).

    Otsu's components, grown 2 px, are thresholded again half-way between the background and
    their own bright level (``bright`` percentile), so a dim chromosome keeps its width
    beside a bright one: one global threshold makes dim objects thin and bright ones fat,
    and real spreads vary two- to three-fold in brightness between chromosomes.

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) DAPI image, any numeric dtype.
    bright : float, optional
        Percentile (0-100) of an object's smoothed pixels taken as its bright level
        (default 90).

    Returns
    -------
    numpy.ndarray
        (H, W) int32 labels of 8-connected objects, 0 = background; all 0 when nothing is
        stained.
    """
    image = cv2.GaussianBlur(dapi.astype(np.float32), (0, 0), 1.0)
    stained = otsu_foreground(dapi)
    surround = cv2.dilate(stained, np.ones((9, 9), np.uint8)) == 0
    background = float(np.median(image[surround])) if surround.any() else float(image.min())
    count, objects = cv2.connectedComponents(
        cv2.dilate(stained, np.ones((5, 5), np.uint8)), connectivity=8
    )
    if count <= 1:
        return np.zeros(dapi.shape, np.int32)
    levels = ndimage.labeled_comprehension(
        image, objects, np.arange(count), lambda v: np.percentile(v, bright), np.float64, 0.0
    )
    half = background + 0.5 * (levels[objects] - background)
    _, labels = cv2.connectedComponents(
        ((objects > 0) & (image > half)).astype(np.uint8), connectivity=8
    )
    return labels.astype(np.int32)


def threshold_components(dapi: np.ndarray) -> np.ndarray:
    """The classical baseline a lab would script itself: ``otsu_foreground``, one instance
    per 8-connected component (touching objects stay one).

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) DAPI image, any numeric dtype.

    Returns
    -------
    numpy.ndarray
        (H, W) int32 instance labels, 0 = background.
    """
    _, labels = cv2.connectedComponents(otsu_foreground(dapi), connectivity=8)
    return labels.astype(np.int32)


def watershed_nuclei(dapi: np.ndarray, min_height: float = 2.0) -> np.ndarray:
    """The classical nucleus baseline: the stain smoothed at 1 px, Li's threshold (below
    Otsu's, so dim nuclei stay whole beside bright ones) and a watershed of the distance
    transform from its h-maxima (``min_height`` px), so touching nuclei are split (int32).

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) nuclear stain image, any numeric dtype.
    min_height : float, optional
        Least height (px of distance transform) of a maximum that seeds a nucleus
        (default 2).

    Returns
    -------
    numpy.ndarray
        (H, W) int32 nucleus labels, 0 = background; all 0 for a flat image.
    """
    from skimage.filters import threshold_li
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    smooth = cv2.GaussianBlur(dapi.astype(np.float32), (0, 0), 1.0)
    if float(smooth.max()) <= float(smooth.min()):
        return np.zeros(dapi.shape, np.int32)
    foreground = smooth > threshold_li(smooth)
    distance = ndimage.distance_transform_edt(foreground).astype(np.float32)
    distance = cv2.GaussianBlur(distance, (0, 0), 1.0)
    markers, _ = ndimage.label(h_maxima(distance, min_height))
    return watershed(-distance, markers, mask=foreground).astype(np.int32)


def estimate_nucleus_diameter(dapi: np.ndarray) -> float:
    """Nucleus size (Cellpose's diameter, px) of a field from :func:`watershed_nuclei`: unlike
    connected components of a threshold it is not fooled by clumps of touching nuclei nor by
    dim nuclei breaking into pieces; 0 when nothing is stained.

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) nuclear stain image, any numeric dtype.

    Returns
    -------
    float
        Median equivalent-disc diameter of the nuclei of at least 15 px, px; 0.0 if none.
    """
    return object_diameter(watershed_nuclei(dapi), min_area=15)


def evaluate_segmentation(
    masks_sheet: str | Path, metrics_out: str | Path, per_image_out: str | Path
) -> dict[str, Any]:
    """Score predicted against truth instances for every row with truth, beside the classical
    baseline (``threshold_components``) on the same images, and count instances per image.

    Per image and pooled over the set (TP/FP/FN summed before the ratios) at IoU 0.5 and
    0.75; ``baseline_*`` keys hold the baseline's pooled scores. Instances per image: the
    mean predicted count, and where truth exists the mean truth count and the mean absolute
    count error. A set without any truth gets an explicit ``has_truth: false``.

    Parameters
    ----------
    masks_sheet : str or Path
        TSV with one row per image: ``sample``, ``pred`` (predicted label image; a relative
        path is relative to the sheet), optional
        ``diameter`` (px), and where truth exists ``mask`` plus the columns
        :func:`~fishline.metaphase_sheet.load_row` reads.
    metrics_out : str or Path
        JSON file written with the metrics.
    per_image_out : str or Path
        TSV written with the per-image rows (scores per method and IoU, instance counts and
        diameters).

    Returns
    -------
    dict of str to Any
        The metrics written to ``metrics_out``: ``has_truth``, ``images`` (with truth),
        ``instances_per_image`` and ``tp@0.5``, ``fp@0.5``, ... (``baseline_`` prefixed for
        the baseline); with truth also the ratios (``ap@0.5``, ``f1@0.75``, ...),
        ``truth_instances_per_image``, ``count_error_per_image`` and, where diameters are
        known, ``diameter_error_median`` and ``diameter_error_max`` (relative).
    """
    frame = pd.read_csv(masks_sheet, sep="\t")
    rows, counts = [], []
    for row in frame.to_dict("records"):
        pred = read_labels(Path(masks_sheet).parent / row["pred"], "instances", None)
        count = {
            "sample": row["sample"],
            "instances": len(np.unique(pred[pred > 0])),
            "diameter": row.get("diameter", np.nan),
        }
        if isinstance(row.get("mask"), str):
            item = load_row(row, masks_sheet)
            truth = item.truth_pieces
            count["truth_instances"] = int(truth.max())
            count["truth_diameter"] = object_diameter(truth)
            baseline = threshold_components(item.dapi)
            for method, labels in (("cellpose", pred), ("baseline", baseline)):
                for threshold in IOU_THRESHOLDS:
                    rows.append(
                        {
                            "sample": row["sample"],
                            "method": method,
                            "iou": threshold,
                            **instance_scores(truth, labels, threshold),
                        }
                    )
        counts.append(count)
    per_image = pd.DataFrame(
        rows,
        columns=["sample", "method", "iou", "tp", "fp", "fn", "ap", "f1", "precision", "recall"],
    )
    counted = pd.DataFrame(
        counts, columns=["sample", "instances", "truth_instances", "diameter", "truth_diameter"]
    )
    metrics: dict[str, Any] = {
        "has_truth": bool(rows),
        "images": int(per_image["sample"].nunique()),
        "instances_per_image": float(counted["instances"].mean()) if len(counted) else 0.0,
    }
    if rows:
        scored = counted.dropna(subset=["truth_instances"])
        metrics["truth_instances_per_image"] = float(scored["truth_instances"].mean())
        metrics["count_error_per_image"] = float(
            (scored["instances"] - scored["truth_instances"]).abs().mean()
        )
        relative = (scored["diameter"] / scored["truth_diameter"] - 1).abs().dropna()
        if len(relative):
            metrics["diameter_error_median"] = float(relative.median())
            metrics["diameter_error_max"] = float(relative.max())
    for method, prefix in (("cellpose", ""), ("baseline", "baseline_")):
        for threshold in IOU_THRESHOLDS:
            part = per_image[(per_image["iou"] == threshold) & (per_image["method"] == method)]
            pooled = pooled_scores(part)
            for key in pooled if rows else ("tp", "fp", "fn"):
                metrics[f"{prefix}{key}@{threshold}"] = pooled[key]
    per_image = per_image.merge(counted, on="sample", how="outer") if rows else counted
    with atomic_outputs(metrics_out, per_image_out) as (json_temp, table_temp):
        json_temp.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        per_image.to_csv(table_temp, sep="\t", index=False)
    return metrics
