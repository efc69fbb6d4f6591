"""Scores of per-item class predictions (any classifier, or spot counting): accuracy, the
confusion matrix, calibration of the certainty and accuracy at retained fractions, written
beside the predictions. Light (no torch), so evaluation-only jobs start fast."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from fishline.io import atomic_outputs
from fishline.logging import get_logger
from fishline.uncertainty import RETAINED, expected_calibration_error, retention_accuracy

log = get_logger("evaluation")


def evaluate_predictions(predictions: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """Accuracy, confusion matrix, ECE (+/- parts) and accuracy at retained fractions.

    Methods without a certainty (all NaN, e.g. spot counting) get accuracy and the confusion
    matrix; their calibration figures are None and only the 100 % retention is filled.
    """
    correct = predictions["correct"].to_numpy()
    confusion = pd.crosstab(
        pd.Categorical(predictions["class_name"], classes),
        pd.Categorical(predictions["predicted_class"], classes),
        dropna=False,
    ).to_numpy()
    metrics: dict[str, Any] = {
        "n": len(predictions),
        "accuracy": float(correct.mean()),
        "confusion": confusion.tolist(),
        "classes": classes,
    }
    if predictions["certainty"].isna().all():
        none = dict.fromkeys(("ece", "ece_positive", "ece_negative", "ece_softmax"))
        retention = {str(k): (metrics["accuracy"] if k == 100 else None) for k in RETAINED}
        return {**metrics, **none, "retention": retention, "max_certainty_fraction": None}
    scores = predictions["certainty"].to_numpy()
    retention = retention_accuracy(scores, correct)
    return {
        **metrics,
        **expected_calibration_error(scores, correct),
        "ece_softmax": expected_calibration_error(predictions["confidence"].to_numpy(), correct)[
            "ece"
        ],
        "retention": {str(k): retention[k] for k in RETAINED},
        "max_certainty_fraction": float((predictions["certainty"] >= 0.999).mean()),
    }


def write_evaluation(
    predictions: pd.DataFrame, classes: list[str], predictions_path: str, metrics_path: str
) -> dict[str, Any]:
    """Write per-item predictions (Parquet) and their metrics (JSON) atomically."""
    metrics = evaluate_predictions(predictions, classes)
    with atomic_outputs(predictions_path, metrics_path) as (pred_tmp, metrics_tmp):
        predictions.to_parquet(pred_tmp, index=False)
        metrics_tmp.write_text(json.dumps(metrics, indent=2))
    log.info("accuracy %.3f on %d items", metrics["accuracy"], metrics["n"])
    return metrics
