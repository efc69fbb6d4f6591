"""Calibrated uncertainty: normalized entropy, ECE with its signed parts, retention curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RETAINED = (100, 95, 90, 75, 50, 40, 30, 20, 15, 10, 5)


def smoothed_entropy_floor(classes: int, smoothing: float) -> float:
    """Entropy of a label-smoothed one-hot target: the lowest entropy training asks for.

    The true class gets ``1 - e + e/C``, the others ``e/C`` each.

    Parameters
    ----------
    classes : int
        Number of classes C.
    smoothing : float
        Label smoothing e in [0, 1).

    Returns
    -------
    float
        Entropy in nats; 0.0 when ``smoothing`` <= 0.
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

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, C) class probabilities (softmax outputs, not logits), rows summing to 1, C >= 2.
    smoothing : float, optional
        Label smoothing the model was trained with, setting ``H_min``
        (:func:`smoothed_entropy_floor`); 0 for no floor. Default 0.01.

    Returns
    -------
    numpy.ndarray
        (N,) float64 certainty in [0, 1].
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
    """Per equal-width confidence bin: (mean confidence, accuracy, count); empty bins NaN.
    (``sklearn.calibration.calibration_curve`` drops empty bins and returns no counts, which
    the ECE and the reliability figure need, so the three bincounts stay.)

    Parameters
    ----------
    confidence : numpy.ndarray
        (N,) confidence of each prediction in [0, 1] (1.0 falls in the last bin).
    correct : numpy.ndarray
        (N,) bool or 0/1, whether each prediction was right.
    bins : int, optional
        Number of equal-width bins over [0, 1] (default 10).

    Returns
    -------
    mean_confidence : numpy.ndarray
        (bins,) float64, NaN for empty bins.
    accuracy : numpy.ndarray
        (bins,) float64 in [0, 1], NaN for empty bins.
    counts : numpy.ndarray
        (bins,) int64 predictions per bin.
    """
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

    Parameters
    ----------
    confidence : numpy.ndarray
        (N,) confidence of each prediction in [0, 1].
    correct : numpy.ndarray
        (N,) bool or 0/1, whether each prediction was right.
    bins : int, optional
        Number of equal-width bins over [0, 1] (default 10).

    Returns
    -------
    dict of str to float
        ``ece``, ``ece_positive`` and ``ece_negative``, each in [0, 1] (both parts >= 0).
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

    Parameters
    ----------
    certainty_scores : numpy.ndarray
        (N,) certainty of each prediction (higher = more certain), N >= 1.
    correct : numpy.ndarray
        (N,) bool or 0/1, whether each prediction was right.
    retained : sequence of int, optional
        Percentages of samples to keep (default ``RETAINED``).

    Returns
    -------
    dict of int to float
        Each percentage and the accuracy (0-1) of the ``max(1, round(N * r / 100))`` most
        certain samples.
    """
    order = np.argsort(-np.asarray(certainty_scores), kind="stable")
    ranked = np.asarray(correct, float)[order]
    out = {}
    for percent in retained:
        keep = max(1, round(len(ranked) * percent / 100))
        out[percent] = float(ranked[:keep].mean())
    return out
