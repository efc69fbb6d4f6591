"""Spot-counting baseline (big-fish LoG detection): counts target spots, maps counts to classes.

The LoG threshold and whether dense regions are decomposed into spot counts are fit on a
labelled synthetic split (validation), as the paper's big-fish baseline.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation
from skimage.filters import threshold_otsu
from skimage.measure import label
from skimage.morphology import disk

from fishline.errors import InputError
from fishline.io import atomic_outputs, read_patch_set, read_stack
from fishline.logging import get_logger, progress_bar

log = get_logger("spots")
KERNEL = 1.5  # LoG sigma in px: the painter's spot sigma is 1-2 px
VOXEL, RADIUS = (100, 100), (150, 150)  # nm: the same 1.5 px spot radius for decomposition


def central_nucleus(dapi: np.ndarray, margin: int = 3) -> np.ndarray:
    """Mask of the patch's own nucleus: Otsu on DAPI, the component nearest the centre,
    grown by ``margin`` px (spots sit at the nuclear rim too)."""
    if dapi.max() == dapi.min():
        return np.zeros(dapi.shape, bool)
    regions = label(dapi > threshold_otsu(dapi))
    centre = np.array(dapi.shape) / 2
    ys, xs = np.nonzero(regions)
    nearest = regions[ys, xs][np.argmin(np.hypot(ys - centre[0], xs - centre[1]))]
    return binary_dilation(regions == nearest, structure=disk(margin))


def log_maxima(images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image, big-fish's LoG response and its local-maximum mask: the threshold-free
    part of ``bigfish.detection.detect_spots``, computed once when several thresholds are
    tried on the same images."""
    from bigfish.detection import local_maximum_detection
    from bigfish.stack import log_filter

    responses = []
    for image in images:
        filtered = log_filter(image, (KERNEL, KERNEL))
        responses.append((filtered, local_maximum_detection(filtered, (2, 2))))
    return responses


def count_spots(
    images: np.ndarray,
    threshold: float,
    decompose: bool,
    masks: np.ndarray | None = None,
    responses: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Target-spot counts per 2-D image by big-fish LoG detection (+ dense decomposition);
    with ``masks``, only spots inside each image's mask count. ``responses`` (from
    :func:`log_maxima` on the same images) skips the filtering: the spots are those
    ``detect_spots`` finds."""
    from bigfish.detection import decompose_dense, spots_thresholding

    if responses is None:
        responses = log_maxima(images)
    counts = np.zeros(len(images), np.int64)
    for index, (image, (filtered, maxima)) in enumerate(zip(images, responses, strict=True)):
        spots, _ = spots_thresholding(filtered, maxima, threshold, remove_duplicate=True)
        if masks is not None and len(spots):
            spots = spots[masks[index][spots[:, 0], spots[:, 1]]]
        counts[index] = len(spots)
        if decompose and len(spots) > 1:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    decomposed, _, _ = decompose_dense(image, spots, VOXEL, RADIUS)
                counts[index] = max(len(decomposed), len(spots))
            except (ValueError, RuntimeError, IndexError):
                pass  # big-fish cannot model this image's reference spot: keep the raw count
    return counts


def threshold_grid(images: np.ndarray, candidates: int) -> np.ndarray:
    """Candidate LoG thresholds: upper quantiles of the LoG response inside the images."""
    from bigfish.stack import log_filter

    sample = images[:: max(1, len(images) // 50)]
    response = np.concatenate([log_filter(im.astype(np.float32), KERNEL).ravel() for im in sample])
    return np.unique(np.round(np.quantile(response, np.linspace(0.97, 0.9995, candidates)), 3))


def classify_counts(counts: np.ndarray, upper_counts: list[int]) -> np.ndarray:
    """Class per count: class i takes counts up to ``upper_counts[i]``, the last the rest."""
    return np.searchsorted(np.asarray(upper_counts), counts, side="left")


def _planes(stack: str) -> tuple[np.ndarray, np.ndarray]:
    """Target-probe planes and central-nucleus masks of a patch stack."""
    images, meta = read_stack(stack)
    names = meta.get("channel_names", [])
    target = meta.get("target")
    if target not in names or "dapi" not in names:
        raise InputError(str(stack), "stack metadata does not name the target and dapi channels")
    masks = np.stack([central_nucleus(plane) for plane in images[:, names.index("dapi")]])
    return images[:, names.index(target)], masks


def fit_spot_counter(
    stack: str,
    table: str,
    classes: list[str],
    upper_counts: list[int],
    candidates: int,
    params_path: str | Path,
) -> dict[str, Any]:
    """Pick the LoG threshold and decomposition that classify the labelled split best."""
    if len(upper_counts) != len(classes) - 1:
        raise InputError(
            "config",
            f"need {len(classes) - 1} upper counts for {classes}",
            item="fish.spots.upper_counts",
        )
    planes, masks = _planes(stack)
    _, frame = read_patch_set(stack, table)
    labels = frame["class_name"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    grid = threshold_grid(planes, candidates)
    truth = frame["target_spots"].to_numpy()

    responses = log_maxima(planes)

    def score(threshold: float, decompose: bool) -> dict[str, Any]:
        counts = count_spots(planes, threshold, decompose, masks, responses)
        return {
            "threshold": threshold,
            "decompose": decompose,
            "accuracy": float((classify_counts(counts, upper_counts) == labels).mean()),
            "exact_count_fraction": float((counts == truth).mean()),
        }

    plain = [score(float(t), False) for t in progress_bar(grid, desc="fit threshold")]
    # dense decomposition is slow: try it only at the three best plain thresholds
    shortlist = sorted(plain, key=lambda r: -r["accuracy"])[:3]
    decomposed = [
        score(r["threshold"], True) for r in progress_bar(shortlist, desc="fit decomposition")
    ]
    best = max(plain + decomposed, key=lambda r: r["accuracy"])
    best.update(upper_counts=list(upper_counts), classes=classes)
    log.info("spot counter fit on %s: %s", table, best)
    with atomic_outputs(params_path) as (temp,):
        temp.write_text(json.dumps(best, indent=2))
    return best


def spot_predictions(stack: str, table: str, params_path: str) -> pd.DataFrame:
    """Predictions of the spot counter in the classifiers' format (no certainty)."""
    params = json.loads(Path(params_path).read_text())
    classes = params["classes"]
    planes, masks = _planes(stack)
    _, frame = read_patch_set(stack, table)
    counts = count_spots(planes, params["threshold"], params["decompose"], masks)
    prediction = classify_counts(counts, params["upper_counts"])
    out = pd.DataFrame({"index": frame["index"], "class_name": frame["class_name"]})
    out["label"] = frame["class_name"].map({c: i for i, c in enumerate(classes)})
    out["prediction"] = prediction
    out["predicted_class"] = [classes[i] for i in prediction]
    out["correct"] = out["prediction"] == out["label"]
    out["confidence"] = np.nan
    out["certainty"] = np.nan
    for i, name in enumerate(classes):
        out[f"p_{name}"] = (prediction == i).astype(float)
    out["count"] = counts
    return out
