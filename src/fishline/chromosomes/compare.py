"""Comparison of FISH classifiers: tables shaped like the paper's and report figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fishline.evaluation import evaluate_predictions
from fishline.io import atomic_outputs
from fishline.plots import CLASS_COLOURS, save_figure
from fishline.uncertainty import RETAINED, calibration_bins

# Bonath et al., Table 3: accuracy (%) at retained fractions on 1814 real nuclei.
PAPER_RETENTION = {
    "big-fish spot counting": [59.4] + [None] * 10,
    "RetinaNet spots": [71.9] + [None] * 10,
    "ResNet+CE": [86.4, 88.5, 90.8, 94.7, 95.6, 95.6, None, None, None, None, None],
    "CL+Detached": [73.0, 73.8, 75.3, 80.4, 89.0, 93.3, 96.2, 98.1, None, 97.2, 98.9],
    "CL+Attached": [88.3, 90.1, 91.4, 94.1, 96.3, 96.7, 96.7, 95.6, None, 92.7, 93.1],
    "Ours Light": [88.3, 90.3, 91.7, 95.2, 96.0, 96.4, 96.2, 96.9, None, 97.9, 100.0],
    "Ours Heavy": [85.6, 87.4, 89.6, 93.8, 96.7, 97.5, 98.9, 99.2, None, 99.4, 100.0],
}


def _load(
    predictions: Sequence[str], models: Sequence[str], test_sets: Sequence[str]
) -> dict[tuple[str, str], pd.DataFrame]:
    """Predictions keyed by (model, test set); inputs come model-major, as expand() lists them."""
    keys = [(m, t) for m in models for t in test_sets]
    return {key: pd.read_parquet(path) for key, path in zip(keys, predictions, strict=True)}


def summary_table(runs: dict[tuple[str, str], pd.DataFrame], classes: list[str]) -> pd.DataFrame:
    """One row per model and test set: accuracy, ECE and its parts, accuracy at 50 %."""
    rows = []
    for (model, test_set), frame in runs.items():
        metrics = evaluate_predictions(frame, classes)
        rows.append(
            {
                "model": model,
                "test_set": test_set,
                "n": metrics["n"],
                "accuracy": metrics["accuracy"],
                "accuracy_at_50": metrics["retention"]["50"],
                "ece": metrics["ece"],
                "ece_positive": metrics["ece_positive"],
                "ece_negative": metrics["ece_negative"],
                "ece_softmax": metrics["ece_softmax"],
                "max_certainty_fraction": metrics["max_certainty_fraction"],
            }
        )
    return pd.DataFrame(rows)


def retention_table(runs: dict[tuple[str, str], pd.DataFrame], classes: list[str]) -> pd.DataFrame:
    """Accuracy (%) at retained fractions per model and test set, the paper's rows below."""
    rows = []
    for (model, test_set), frame in runs.items():
        retention = evaluate_predictions(frame, classes)["retention"]
        rows.append(
            {
                "source": f"fishline {test_set}",
                "model": model,
                **{
                    f"{r}%": None
                    if retention[str(r)] is None
                    else round(100 * retention[str(r)], 1)
                    for r in RETAINED
                },
            }
        )
    for model, values in PAPER_RETENTION.items():
        rows.append(
            {
                "source": "paper, real nuclei",
                "model": model,
                **{f"{r}%": v for r, v in zip(RETAINED, values, strict=True)},
            }
        )
    return pd.DataFrame(rows)


def calibration_figure(
    runs: dict[tuple[str, str], pd.DataFrame], test_sets: Sequence[str], path: str | Path
) -> None:
    """Reliability diagrams: accuracy per certainty bin against the diagonal."""
    figure, axes = plt.subplots(1, len(test_sets), figsize=(4.5 * len(test_sets), 4), squeeze=False)
    for ax, test_set in zip(axes[0], test_sets, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        for (model, current), frame in runs.items():
            if current != test_set or frame["certainty"].isna().all():
                continue
            conf, acc, counts = calibration_bins(frame["certainty"], frame["correct"])
            used = counts > 0
            ax.plot(conf[used], acc[used], marker="o", label=model)
        ax.set(title=test_set, xlabel="certainty", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=8)
    save_figure(figure, path)


def threshold_figure(
    runs: dict[tuple[str, str], pd.DataFrame],
    models: Sequence[str],
    test_sets: Sequence[str],
    classes: list[str],
    path: str | Path,
) -> None:
    """Per model and test set: accuracy and class mix of the cells above a certainty cut."""
    cuts = np.linspace(0, 0.95, 20)
    figure, axes = plt.subplots(
        len(models), len(test_sets), figsize=(4.5 * len(test_sets), 3 * len(models)), squeeze=False
    )
    for row, model in enumerate(models):
        for col, test_set in enumerate(test_sets):
            frame = runs[(model, test_set)]
            ax = axes[row, col]
            mix = np.array(
                [
                    [
                        ((frame["certainty"] >= c) & (frame["predicted_class"] == name)).mean()
                        for name in classes
                    ]
                    for c in cuts
                ]
            )
            ax.stackplot(
                cuts, mix.T, labels=classes, colors=CLASS_COLOURS[: len(classes)], alpha=0.35
            )
            accuracy = [frame.loc[frame["certainty"] >= c, "correct"].mean() for c in cuts]
            ax.plot(cuts, accuracy, color="black", label="accuracy of retained")
            ax.set(ylim=(0, 1.02))
            ax.set_title(f"{model} on {test_set}", fontsize=9)
            if row == len(models) - 1:
                ax.set_xlabel("certainty threshold")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    save_figure(figure, path)


def confusion_figure(
    runs: dict[tuple[str, str], pd.DataFrame],
    models: Sequence[str],
    test_sets: Sequence[str],
    classes: list[str],
    path: str | Path,
) -> None:
    """Confusion matrices (rows: truth, columns: prediction)."""
    figure, axes = plt.subplots(
        len(models),
        len(test_sets),
        figsize=(3.8 * len(test_sets), 3.4 * len(models)),
        squeeze=False,
    )
    for row, model in enumerate(models):
        for col, test_set in enumerate(test_sets):
            matrix = np.array(evaluate_predictions(runs[(model, test_set)], classes)["confusion"])
            sns.heatmap(
                matrix,
                annot=True,
                fmt="d",
                cmap="Blues",
                cbar=False,
                ax=axes[row, col],
                xticklabels=classes,
                yticklabels=classes,
            )
            axes[row, col].set(title=f"{model} on {test_set}", xlabel="predicted", ylabel="true")
    save_figure(figure, path)


def training_figure(histories: Sequence[str], models: Sequence[str], path: str | Path) -> None:
    """Loss per epoch of every model."""
    figure, ax = plt.subplots(figsize=(6, 3.5))
    for model, history in zip(models, histories, strict=True):
        frame = pd.read_parquet(history)
        ax.plot(frame["epoch"], frame["loss"], marker="o", label=model)
    ax.set(xlabel="epoch", ylabel="training loss")
    ax.legend(fontsize=8)
    save_figure(figure, path)


def fish_compare(
    predictions: Sequence[str],
    histories: Sequence[str],
    models: Sequence[str],
    networks: Sequence[str],
    test_sets: Sequence[str],
    classes: list[str],
    outputs: dict[str, Any],
) -> None:
    """Write the comparison tables (TSV/HTML) and figures of the FISH classifiers.

    ``models`` are all methods with predictions (networks and baselines); ``networks``
    the trained ones, whose ``histories`` are given in the same order.
    """
    runs = _load(predictions, models, test_sets)
    summary = summary_table(runs, classes)
    retention = retention_table(runs, classes)
    with atomic_outputs(outputs["summary"], outputs["retention"]) as (summary_tmp, html_tmp):
        summary.to_csv(summary_tmp, sep="\t", index=False, float_format="%.4f")
        html_tmp.write_text(
            "<h3>Accuracy (%) among the most certain cells, by retained fraction</h3>"
            + retention.to_html(index=False, na_rep="", float_format="%.1f")
            + "<h3>Accuracy and calibration</h3>"
            + summary.to_html(index=False, float_format="%.3f")
        )
    calibration_figure(runs, test_sets, outputs["calibration"])
    with_certainty = [m for m in models if runs[(m, test_sets[0])]["certainty"].notna().any()]
    threshold_figure(runs, with_certainty, test_sets, classes, outputs["threshold"])
    confusion_figure(runs, models, test_sets, classes, outputs["confusion"])
    training_figure(histories, networks, outputs["training"])


# Bonath et al., Table 1 (accuracy %): the figures the notes keep.
PAPER_ABLATION = {
    "paper, real nuclei": {"all": 86.1, "none": 40.6, "without gradient+noise": 45.0},
    "paper, synthetic test": {"all": 94.6, "none": 94.3},
}


def ablation_table(
    runs: dict[tuple[str, str], pd.DataFrame],
    model: str,
    steps: Sequence[str],
    test_sets: Sequence[str],
) -> pd.DataFrame:
    """Accuracy (%) per test set: all augmentations, none, and each step left out."""
    columns = {"all": model, "none": f"{model}_no_augment"}
    columns.update({f"without {step}": f"{model}_without_{step}" for step in steps})
    rows = [
        {
            "source": f"fishline {test_set}",
            **{
                label: round(100 * runs[(name, test_set)]["correct"].mean(), 1)
                for label, name in columns.items()
            },
        }
        for test_set in test_sets
    ]
    rows += [{"source": source, **values} for source, values in PAPER_ABLATION.items()]
    return pd.DataFrame(rows)


def fish_ablation(
    predictions: Sequence[str],
    model: str,
    steps: Sequence[str],
    test_sets: Sequence[str],
    table: str,
    tsv: str,
) -> None:
    """Write the leave-one-out augmentation ablation table (HTML for the report, TSV)."""
    names = [model, f"{model}_no_augment", *(f"{model}_without_{step}" for step in steps)]
    runs = _load(predictions, names, test_sets)
    frame = ablation_table(runs, model, steps, test_sets)
    with atomic_outputs(table, tsv) as (temp, tsv_temp):
        frame.to_csv(tsv_temp, sep="\t", index=False)
        temp.write_text(
            f"<h3>Augmentation ablation of {model}: accuracy (%)</h3>"
            + frame.to_html(index=False, na_rep="", float_format="%.1f")
        )
