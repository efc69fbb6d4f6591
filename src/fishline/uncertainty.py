"""Calibrated uncertainty: normalized entropy, ECE with its signed parts, retention curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RETAINED = (100, 95, 90, 75, 50, 40, 30, 20, 15, 10, 5)


def smoothed_entropy_floor(classes: int, smoothing: float) -> float:
    """Entropy of a label-smoothed one-hot target: the lowest entropy training asks for.

    The true class gets ``1 - e + e/C``, the others ``e/C`` each.
    """
    if smoothing <= 0:
        return 0.0
    top = 1 - smoothing + smoothing / classes
    rest = smoothing / classes
    return float(-(top * math.log(top) + (classes - 1) * rest * math.log(rest)))


def certainty(probabilities: np.ndarray, smoothing: float = 0.01) -> np.ndarray:
    """1 - normalized entropy, rescaled so a label-smoothed one-hot output scores 1.

    ``u = (H(p) - H_min) / (log C - H_min)``; certainty ``1 - u`` clipped to [0, 1]:
    uniform output -> 0, smoothed one-hot -> 1 (Bonath et al., Eq. 2).
    """
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    classes = p.shape[1]
    entropy = -(p * np.log(p)).sum(axis=1)
    floor = smoothed_entropy_floor(classes, smoothing)
    uncertainty = (entropy - floor) / (math.log(classes) - floor)
    return np.clip(1.0 - uncertainty, 0.0, 1.0)


def calibration_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: (mean confidence, accuracy, count); empty bins NaN."""
    confidence = np.asarray(confidence, float)
    correct = np.asarray(correct, float)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    return mean_conf, accuracy, counts


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> dict[str, float]:
    """ECE and its over-confident (positive) and under-confident (negative) parts.

    ``ece = sum_b n_b/N |conf_b - acc_b|``; ``positive`` sums the bins where confidence
    exceeds accuracy, ``negative`` those where it falls short, so ece = positive + negative.
    """
    mean_conf, accuracy, counts = calibration_bins(confidence, correct, bins)
    used = counts > 0
    gap = (mean_conf[used] - accuracy[used]) * counts[used] / counts.sum()
    return {
        "ece": float(np.abs(gap).sum()),
        "ece_positive": float(gap[gap > 0].sum()),
        "ece_negative": float(-gap[gap < 0].sum()),
    }


def retention_accuracy(
    certainty_scores: np.ndarray, correct: np.ndarray, retained: Sequence[int] = RETAINED
) -> dict[int, float]:
    """Accuracy among the most certain ``r`` % of samples, for each ``r`` in ``retained``.

    Ties are broken by position (stable sort), so the result is deterministic.
    """
    order = np.argsort(-np.asarray(certainty_scores), kind="stable")
    ranked = np.asarray(correct, float)[order]
    out = {}
    for percent in retained:
        keep = max(1, round(len(ranked) * percent / 100))
        out[percent] = float(ranked[:keep].mean())
    return out
