"""How far a few real annotated metaphases take a Cellpose model: fine-tune it on K spreads of
a metaphase sheet with masks and score it on the others, for several K and random draws."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import PATH_SEPARATOR, split_paths
from fishline.instances import pooled_scores
from fishline.io import atomic_outputs
from fishline.logging import get_logger
from fishline.metaphase_sheet import read_sheet
from fishline.plots import save_figure
from fishline.segment import (
    CellposeTrainSettings,
    SegmentSettings,
    new_model,
    score_spreads,
    train_cellpose,
)
from fishline.train.loop import setup_device

log = get_logger("finetune")


def draw_subsets(
    samples: Sequence[str], ks: Sequence[int], draws: int, seed: int
) -> list[tuple[int, int, list[str]]]:
    """(K, draw, training samples) for every K: ``draws`` random subsets of size K (one for
    K = 0); the same seed gives the same subsets."""
    rng = np.random.default_rng(seed)
    plan = []
    for k in ks:
        if k >= len(samples):
            raise InputError("config", f"K = {k} leaves no spread to score", item="ks")
        for draw in range(1 if k == 0 else draws):
            chosen = rng.choice(len(samples), size=k, replace=False) if k else []
            plan.append((k, draw, sorted(samples[i] for i in chosen)))
    return plan


def finetune_curve(
    model_path: str | Path,
    sheet: str | Path,
    curve: Mapping[str, Any],
    cellpose: CellposeTrainSettings,
    segment: SegmentSettings,
    seed: int,
    threads: int,
    device: str,
    table_out: str | Path,
    figure_out: str | Path,
) -> pd.DataFrame:
    """Fine-tune ``model_path`` (a fishline or Cellpose weights file) on K spreads of
    ``sheet`` and score it on the rest (F1@0.5 pooled over those spreads), for each K of
    ``curve['ks']`` and ``curve['draws']`` draws; write one row per (K, draw) and the mean
    curve with its spread over draws. Each row also scores the start model on the same
    held-out spreads (``start_f1``), as the draws leave out different spreads, and the
    tuned model before the M-FISH colour merge (``dapi_only_f1``; equal to ``f1`` where the
    sheet names no fluor channels).
    (10 parameters: the rule's inputs, settings, outputs and resources as it passes them.)"""
    sheet = Path(sheet)
    rows = read_sheet(sheet)
    rows = rows[rows["mask"].notna()].reset_index(drop=True)
    samples = list(rows["sample"])
    chosen_device = setup_device(device, threads, seed)
    start = new_model(chosen_device, cellpose.diameter, Path(model_path))
    records = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for k, draw, chosen in draw_subsets(samples, curve["ks"], curve["draws"], seed):
            held_out = folder / f"held_out_{k}_{draw}.tsv"
            subset_sheet(rows, [s for s in samples if s not in chosen], sheet, held_out)
            # The start model on the same spreads, so each draw's gain is paired.
            scores = score_spreads(
                start, start.net.diam_labels.item(), held_out, segment, f"start, K={k} draw {draw}"
            )
            before = pooled_scores(scores)
            if k:
                train_sheet = folder / f"train_{k}_{draw}.tsv"
                subset_sheet(rows, chosen, sheet, train_sheet)
                tuned = fine_tune(
                    model_path, train_sheet, cellpose, curve, seed + draw, threads, folder
                )
                model = new_model(chosen_device, cellpose.diameter, tuned)
                scores = score_spreads(
                    model, model.net.diam_labels.item(), held_out, segment, f"K={k} draw {draw}"
                )
            result = pooled_scores(scores)
            records.append(
                {
                    "k": k,
                    "draw": draw,
                    "train": " ".join(chosen),
                    "scored": len(scores),
                    **{key: result[key] for key in ("f1", "precision", "recall")},
                    "start_f1": before["f1"],
                    "dapi_only_f1": pooled_scores(scores, "dapi_only_")["f1"],
                    "baseline_f1": pooled_scores(scores, "baseline_")["f1"],
                }
            )
            log.info(
                "K=%d draw %d: F1@0.5 %.3f on %d spreads (start model %.3f)",
                k,
                draw,
                result["f1"],
                len(scores),
                before["f1"],
            )
    table = pd.DataFrame(records)
    _write(table, table_out, figure_out)
    return table


def fine_tune(
    model_path: str | Path,
    train_sheet: Path,
    cellpose: CellposeTrainSettings,
    schedule: Mapping[str, Any],
    seed: int,
    threads: int,
    folder: Path,
    device: str = "cpu",
) -> Path:
    """Fine-tune ``model_path`` on the spreads of ``train_sheet`` (on ``device``, the CPU by
    default) with the ``epochs``, ``images_per_epoch`` and ``learning_rate`` of ``schedule``
    (the rest as ``cellpose``); the tuned model file and ``history.parquet`` in ``folder``."""
    tuned = folder / "tuned.pt"
    settings = replace(
        cellpose,
        **{key: schedule[key] for key in ("epochs", "images_per_epoch", "learning_rate")},
        pretrained=str(model_path),
    )
    train_cellpose(
        train_sheet, None, settings, seed, threads, device, tuned, folder / "history.parquet"
    )
    return tuned


def subset_sheet(rows: pd.DataFrame, samples: Sequence[str], sheet: Path, out: Path) -> None:
    """A metaphase sheet of some rows, paths made absolute so it can live elsewhere."""
    part = rows[rows["sample"].isin(samples)].copy()
    for column in ("image", "mask"):
        part[column] = [
            PATH_SEPARATOR.join(str((sheet.parent / p).resolve()) for p in split_paths(value))
            for value in part[column]
        ]
    part.to_csv(out, sep="\t", index=False)


def _write(table: pd.DataFrame, table_out: str | Path, figure_out: str | Path) -> None:
    """The per-draw table and the mean +/- SD curve, atomically."""
    curve = table.groupby("k")["f1"].agg(["mean", "std", "count"]).reset_index()
    start = table.groupby("k")["start_f1"].mean()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.errorbar(
        curve["k"], curve["mean"], yerr=curve["std"].fillna(0), marker="o", capsize=3,
        label="fine-tuned",
    )  # fmt: skip
    axis.plot(start.index, start.to_numpy(), "k:", marker=".", label="start model, same spreads")
    axis.scatter(table["k"], table["f1"], s=10, color="grey", alpha=0.6, label="one draw")
    axis.axhline(table["baseline_f1"].mean(), color="tab:red", ls="--", label="Otsu baseline")
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlim(-0.5, max(1.0, float(table["k"].max())) * 1.4)  # the last K off the frame
    axis.set_xticks(curve["k"], [str(k) for k in curve["k"]])
    axis.set_xlabel("real annotated metaphases K")
    axis.set_ylabel("F1@0.5 on the other spreads")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    with atomic_outputs(table_out) as (table_temp,):
        table.to_csv(table_temp, sep="\t", index=False, float_format="%.4f")
    save_figure(figure, figure_out)
