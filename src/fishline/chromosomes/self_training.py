"""Self-training on a lab's own unannotated metaphases: the chromosome model labels the
spreads, the stained objects its masks leave unexplained are painted over, and the model is
fine-tuned on those pseudo-masks. No truth mask is read. On the real dev spreads it gained on
every held-out half (docs/chromosomes.md, ``benchmarks/self_training.py``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import tifffile

from fishline.chromosomes.finetune import fine_tune
from fishline.errors import InputError
from fishline.instances import otsu_foreground
from fishline.io import atomic_folder, atomic_outputs
from fishline.logging import get_logger
from fishline.metaphase_sheet import load_row, read_sheet
from fishline.segment import CellposeTrainSettings, SegmentSettings, segment_sheet

log = get_logger("self_training")
UNEXPLAINED_COVER = 0.2  # a stained object under this share near a mask is unexplained
NUCLEUS_AREA = 8.0  # objects over this many median masks are nuclei: kept as negatives


def paint_over_unexplained(
    dapi: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """``dapi`` (as float32) with the stained objects that no mask of ``labels`` explains
    inpainted from their surroundings plus background noise, and how many objects that was.

    Without it, fine-tuning on pseudo-masks teaches the network that the chromosomes it
    missed are background; nuclei (over ``NUCLEUS_AREA`` median masks) stay as negatives."""
    stained = otsu_foreground(dapi)
    count, objects = cv2.connectedComponents(stained)
    near = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    sizes = np.bincount(objects.ravel(), minlength=count)
    cover = np.bincount(objects.ravel(), weights=near.ravel(), minlength=count) / np.maximum(
        sizes, 1
    )
    areas = np.bincount(labels.ravel())[1:]
    median_area = float(np.median(areas[areas > 0])) if (areas > 0).any() else 0.0
    unexplained = (cover < UNEXPLAINED_COVER) & (sizes < NUCLEUS_AREA * median_area)
    unexplained[0] = False
    image = dapi.astype(np.float32)
    if not unexplained.any():
        return image, 0
    region = cv2.dilate(unexplained[objects].astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    region &= ~near
    background = image[~cv2.dilate(stained, np.ones((9, 9), np.uint8)).astype(bool)]
    noise = 1.4826 * float(np.median(np.abs(background - np.median(background))))
    filled = cv2.inpaint(image, region.astype(np.uint8), 7, cv2.INPAINT_TELEA)
    image[region] = filled[region] + rng.normal(0.0, noise, int(region.sum()))
    return image, int(unexplained.sum())


def pseudo_label(
    model_path: str | Path,
    sheets: Mapping[str, Path],
    segment: SegmentSettings,
    paint_over: bool,
    seed: int,
    threads: int,
    device: str,
    outdir: str | Path,
) -> pd.DataFrame:
    """Label every spread of ``sheets`` (set name -> metaphase sheet) with ``model_path``
    (colour merge as ``segment`` says) and write a training sheet of them to
    ``outdir/sheet.tsv``: one DAPI image per spread (painted over where the masks leave
    objects unexplained, when ``paint_over``) and its pseudo-masks, under ``<set>/`` with
    the set's masks sheet (``<set>/masks.tsv``, as ``segment`` writes one: scoring the
    pseudo-masks scores the model before self-training).
    (8 parameters: the model, the spreads, the settings and where it runs and writes.)

    Returns the summary also written to ``outdir/summary.tsv``: per spread ``set``,
    ``sample``, ``pseudo_chromosomes``, ``painted_over`` (objects) and ``diameter`` (px).
    Spreads without a pseudo-mask are left out of the training sheet; an InputError naming
    the sheets when that leaves none."""
    outdir = Path(outdir)
    rng = np.random.default_rng(seed)
    training, summary = [], []
    for name, sheet in sheets.items():
        masks = segment_sheet(
            model_path, sheet, segment, outdir / name, outdir / name / "masks.tsv", threads, device
        )
        # the folder is moved into place when done: label paths relative to their sheet
        masks["pred"] = [Path(pred).name for pred in masks["pred"]]
        masks.to_csv(outdir / name / "masks.tsv", sep="\t", index=False)
        for row in masks.to_dict("records"):
            dapi = load_row(row, sheet, with_truth=False).dapi
            labels = tifffile.imread(outdir / name / row["pred"])
            image, painted = (
                paint_over_unexplained(dapi, labels, rng)
                if paint_over
                else (dapi.astype(np.float32), 0)
            )
            tifffile.imwrite(outdir / name / f"{row['sample']}.dapi.tif", image)
            if row["instances"] == 0:
                log.warning("%s %s: no pseudo-mask, left out of the training", name, row["sample"])
            else:
                training.append(
                    {
                        "sample": f"{name}.{row['sample']}",
                        "image": f"{name}/{row['sample']}.dapi.tif",
                        "dapi": 0,
                        "mask": f"{name}/{row['sample']}.pred.tif",
                        "mask_kind": "instances",
                    }
                )
            summary.append(
                {
                    "set": name,
                    "sample": row["sample"],
                    "pseudo_chromosomes": int(row["instances"]),
                    "painted_over": painted,
                    "diameter": float(row["diameter"]),
                }
            )
            log.info(
                "%s %s: %d pseudo-masks, %d unexplained objects painted over",
                name, row["sample"], row["instances"], painted,
            )  # fmt: skip
    if not training:
        raise InputError(
            ", ".join(str(sheet) for sheet in sheets.values()),
            f"the model ({model_path}) found no chromosome in any spread: nothing to self-train "
            "on (check the images' DAPI channel and chromosomes.segment)",
            item="chromosomes.self_training",
        )
    pd.DataFrame(training).to_csv(outdir / "sheet.tsv", sep="\t", index=False)
    table = pd.DataFrame(summary)
    table.to_csv(outdir / "summary.tsv", sep="\t", index=False, float_format="%.2f")
    return table


def with_painted(pseudo: Path, painted: Path, out: Path) -> Path:
    """``out``: a training sheet of the pseudo-labelled spreads of the sheet ``pseudo`` and
    every spread of ``painted`` (a metaphase sheet with truth masks), paths absolute."""
    rows = []
    for sheet in (pseudo, painted):
        table = read_sheet(sheet)  # paths resolved against the sheet's folder
        rows.append(table[["sample", "image", "dapi", "mask", "mask_kind"]])
    pd.concat(rows).to_csv(out, sep="\t", index=False)
    return out


def self_train(
    model_path: str | Path,
    sheets: Mapping[str, Path],
    painted: Path | None,
    settings: Mapping[str, Any],
    cellpose: CellposeTrainSettings,
    segment: SegmentSettings,
    seed: int,
    threads: int,
    device: str,
    pseudo_out: str | Path,
    model_out: str | Path,
    history_out: str | Path,
) -> pd.DataFrame:
    """Pseudo-label the spreads of ``sheets`` with ``model_path`` (:func:`pseudo_label`, into
    the folder ``pseudo_out``) and fine-tune ``model_path`` on them, and on the painted
    spreads of the sheet ``painted`` with their truth when given, with the ``epochs``,
    ``images_per_epoch`` and ``learning_rate`` of ``settings`` (the config block
    ``chromosomes.self_training``); the tuned model and its loss history are written
    atomically. Returns the pseudo-labelling summary.
    (12 parameters: the rule's inputs, settings, outputs and resources as it passes them.)"""
    with atomic_folder(pseudo_out) as folder:
        summary = pseudo_label(
            model_path, sheets, segment, settings["paint_over"], seed, threads, device, folder
        )
        log.info(
            "%d spreads pseudo-labelled (%.1f masks, %.1f objects painted over per spread); "
            "fine-tuning %d epochs x %d tiles",
            len(summary), summary["pseudo_chromosomes"].mean(), summary["painted_over"].mean(),
            settings["epochs"], settings["images_per_epoch"],
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as temporary:
            training = folder / "sheet.tsv"
            if painted is not None:
                training = with_painted(training, painted, Path(temporary) / "training.tsv")
            tuned = fine_tune(
                model_path, training, cellpose, settings, seed, threads, Path(temporary), device
            )
            with atomic_outputs(model_out, history_out) as (model_temp, history_temp):
                shutil.move(tuned, model_temp)
                shutil.move(Path(temporary) / "history.parquet", history_temp)
    return summary
