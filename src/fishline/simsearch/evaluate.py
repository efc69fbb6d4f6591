"""SimSearch evaluation (notes, "Evaluation protocol"): detections matched to ground-truth
centres, precision-recall over the confidence, its area (average precision), and the
ablation table and figure (strategies and P/N settings vs the supervised baseline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fishline.errors import InputError
from fishline.plots import save_figure

STRATEGY_ORDER = ["pos", "pos_neg", "pos_selflearn", "pos_neg_selflearn"]


def match_detections(
    detections: pd.DataFrame, truth: pd.DataFrame, radius: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Greedy matching on one image: detections in order of decreasing confidence each take
    the nearest still unmatched truth point of their class within ``radius`` (pixels).

    Returns (detections with a bool column ``tp``, truth with a bool column ``matched``);
    unmatched detections are false positives, unmatched truth points false negatives.
    """
    found = detections.sort_values("confidence", ascending=False, kind="stable").copy()
    points = truth.copy()
    taken = np.zeros(len(points), dtype=bool)
    hits = np.zeros(len(found), dtype=bool)
    px, py = points["x"].to_numpy(float), points["y"].to_numpy(float)
    labels = points["class"].to_numpy()
    for row, (x, y, label) in enumerate(found[["x", "y", "class"]].itertuples(index=False)):
        distance = np.hypot(px - x, py - y)
        distance[taken | (labels != label) | (distance > radius)] = np.inf
        if len(distance) and np.isfinite(distance.min()):
            taken[int(distance.argmin())] = True
            hits[row] = True
    found["tp"] = hits
    points["matched"] = taken
    return found, points


def precision_recall(confidence: np.ndarray, tp: np.ndarray, positives: int) -> pd.DataFrame:
    """Precision and recall at every distinct confidence threshold (highest first): the
    detections with confidence >= threshold are kept; ``positives`` = truth points."""
    order = np.argsort(-np.asarray(confidence, dtype=float), kind="stable")
    scores = np.asarray(confidence, dtype=float)[order]
    hits = np.asarray(tp, dtype=bool)[order]
    true = np.cumsum(hits)
    kept = np.arange(1, len(hits) + 1)
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    return pd.DataFrame(
        {
            "threshold": scores[last],
            "precision": true[last] / kept[last],
            "recall": true[last] / positives if positives else np.full(last.sum(), np.nan),
        }
    )


def pr_auc(confidence: np.ndarray, tp: np.ndarray, positives: int) -> float:
    """Area under the precision-recall curve as average precision (no interpolation):
    ``sum_k (R_k - R_{k-1}) P_k`` over the thresholds, R_0 = 0. Truth points never detected
    keep the recall below 1 and so lower the area. NaN when there is no truth point."""
    if positives == 0:
        return float("nan")
    curve = precision_recall(confidence, tp, positives)
    recall = np.r_[0.0, curve["recall"].to_numpy()]
    return float(np.sum(np.diff(recall) * curve["precision"].to_numpy()))


def evaluate_detections(
    detections: pd.DataFrame,
    truth: Mapping[str, pd.DataFrame],
    classes: Sequence[str],
    radius: float,
) -> dict[str, Any]:
    """Per-class and mean PR AUC over the images of ``truth`` (detections on other images
    are ignored; truth points of classes outside ``classes``, e.g. ``absent``, are not
    targets). Returns {"classes": {name: {auc, tp, fp, fn, truth, detections}}, "mean_auc"}.
    """
    missing = [c for c in ("image", "x", "y", "class", "confidence") if c not in detections]
    if missing:
        raise InputError("detections", f"missing column(s) {missing}")
    if not truth:
        raise InputError("truth", "no image with ground truth to evaluate on")
    matched, points = [], []
    for image, frame in truth.items():
        targets = frame[frame["class"].isin(classes)]
        found = detections[(detections["image"] == image) & detections["class"].isin(classes)]
        result, marked = match_detections(found, targets, radius)
        matched.append(result)
        points.append(marked)
    every = pd.concat(matched, ignore_index=True)
    every_truth = pd.concat(points, ignore_index=True)
    per_class: dict[str, dict[str, float]] = {}
    for name in classes:
        mine = every[every["class"] == name]
        truths = int((every_truth["class"] == name).sum())
        tp = int(mine["tp"].sum())
        per_class[name] = {
            "auc": pr_auc(mine["confidence"].to_numpy(), mine["tp"].to_numpy(), truths),
            "tp": tp,
            "fp": len(mine) - tp,
            "fn": truths - tp,
            "truth": truths,
            "detections": len(mine),
        }
    aucs = [v["auc"] for v in per_class.values() if not np.isnan(v["auc"])]
    return {"classes": per_class, "mean_auc": float(np.mean(aucs)) if aucs else float("nan")}


def _setting(frame: pd.DataFrame) -> pd.Series:
    """'P=5 N=0' labels; the supervised rows read 'supervised'."""
    label = (
        "P="
        + frame["prototypes"].astype("Int64").astype(str)
        + " N="
        + frame["negatives"].astype("Int64").astype(str)
    )
    return label.where(frame["strategy"] != "supervised", "supervised")


def ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of ``auc`` per strategy and P/N setting.

    ``frame`` has one row per trained model: strategy, prototypes, negatives, auc (the
    supervised rows may leave prototypes/negatives empty). Columns: strategy, setting,
    runs, mean, std, text ("mean +- std", 3 decimals).
    """
    missing = [c for c in ("strategy", "prototypes", "negatives", "auc") if c not in frame]
    if missing:
        raise InputError("ablation", f"missing column(s) {missing}")
    data = frame.assign(setting=_setting(frame))
    table = (
        data.groupby(["strategy", "setting"], sort=True)["auc"]
        .agg(runs="count", mean="mean", std="std")
        .reset_index()
    )
    table["std"] = table["std"].fillna(0.0)
    table["text"] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["mean"], table["std"], strict=True)]
    return table


def ablation_figure(frame: pd.DataFrame, path: str | Path) -> None:
    """Violin plot of the AUC per P/N setting (x) and strategy (colour), the supervised
    baseline as a horizontal line (its mean) with a band of +- one standard deviation."""
    data = frame.assign(setting=_setting(frame))
    runs = data[data["strategy"] != "supervised"]
    baseline = data.loc[data["strategy"] == "supervised", "auc"]
    figure, axis = plt.subplots(figsize=(8, 4))
    if len(runs):
        order = [s for s in STRATEGY_ORDER if s in set(runs["strategy"])]
        sns.violinplot(
            data=runs,
            x="setting",
            y="auc",
            hue="strategy",
            hue_order=order,
            order=sorted(runs["setting"].unique()),
            cut=0,
            inner="point",
            ax=axis,
        )
    if len(baseline):
        mean, std = (
            float(baseline.mean()),
            float(baseline.std(ddof=1)) if len(baseline) > 1 else 0.0,
        )
        axis.axhline(mean, color="black", linestyle="--", label="supervised")
        axis.axhspan(mean - std, mean + std, color="grey", alpha=0.2)
        axis.legend(fontsize=8)
    axis.set_ylabel("PR AUC")
    axis.set_xlabel("prototypes / negatives")
    axis.set_ylim(0, 1.02)
    save_figure(figure, path)
