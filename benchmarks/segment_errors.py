"""Where a chromosome model goes wrong on real spreads: every truth instance it misses and
every instance it finds that matches no truth (IoU < 0.5), sorted by cause, for the model,
for the model before its M-FISH colour merge (DAPI alone; ``chromosomes.segment.colour_merge``)
and for the classical baseline (blur + Otsu + connected components) on the same spreads.
Usage:
    python benchmarks/segment_errors.py [--model resources/models/chromosomes_cellpose.pt]
        [--sheet resources/mfish_dev.tsv] [--threads 1]

Causes of a missed truth instance: ``not found`` (under 5 % of it covered by predictions),
``partly found`` (5-50 % covered), ``split`` (two or more predictions each cover over 20 %
of it), ``merged`` (one prediction covers it and over 20 % of another truth instance),
``too big`` / ``too small`` (one prediction, no other truth, IoU under 0.5). Causes of an
unmatched prediction: ``far from truth`` (wholly off the truth and over one truth diameter, the
median instance's equivalent disc, from every truth instance: a neighbouring spread or cell
the annotators left out, or debris), ``background`` (under half of it on truth, near it),
``merge`` (over 20 % on each of two truth instances), ``piece`` (on one truth instance that
is split between predictions), ``size`` (on one truth instance, IoU under 0.5).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import pandas as pd
import torch
from rows import Row, add_chromosome_model_arguments, add_json_argument, write_rows
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from fishline.instances import (
    iou_matrix,
    object_diameter,
    overlap_counts,
    score_ratios,
    threshold_components,
)
from fishline.metaphase_sheet import iter_sheet
from fishline.segment import SegmentSettings, colour_merged, load_cellpose, segment_spread

MISSED = ("not found", "partly found", "split", "merged", "too big", "too small")
EXTRA = ("far from truth", "background", "merge", "piece", "size")


def error_causes(truth: np.ndarray, pred: np.ndarray) -> tuple[Counter, Counter, int]:
    """Counts of missed truth instances and unmatched predictions by cause, and the matches
    (IoU >= 0.5), of one image."""
    truth, pred = relabel_sequential(truth)[0], relabel_sequential(pred)[0]
    iou = iou_matrix(truth, pred)
    counts = overlap_counts(truth, pred)
    overlap = counts[1:, 1:]
    truth_area, pred_area = counts.sum(axis=1)[1:], counts.sum(axis=0)[1:]
    covers = overlap / np.maximum(truth_area[:, None], 1)  # share of truth i under pred j
    lies_on = overlap / np.maximum(pred_area[None, :], 1)  # share of pred j on truth i
    matched_truth, matched_pred = (iou >= 0.5).any(1), (iou >= 0.5).any(0)
    diameter = object_diameter(truth)
    to_truth = (
        ndimage.distance_transform_edt(truth == 0) if truth.any() else np.full(truth.shape, np.inf)
    )
    nearest = ndimage.minimum(to_truth, pred, np.arange(1, len(pred_area) + 1))
    missed: Counter = Counter()
    for i in np.flatnonzero(~matched_truth):
        covered, big = covers[i].sum(), np.flatnonzero(covers[i] > 0.2)
        if covered < 0.05:
            missed["not found"] += 1
        elif covered < 0.5:
            missed["partly found"] += 1
        elif len(big) >= 2:
            missed["split"] += 1
        else:
            j = big[0] if len(big) else int(covers[i].argmax())
            if (lies_on[:, j] > 0.2).sum() >= 2:
                missed["merged"] += 1
            else:
                missed["too big" if pred_area[j] > truth_area[i] else "too small"] += 1
    extra: Counter = Counter()
    for j in np.flatnonzero(~matched_pred):
        if nearest[j] > diameter:
            extra["far from truth"] += 1
        elif lies_on[:, j].sum() < 0.5:
            extra["background"] += 1
        elif (lies_on[:, j] > 0.2).sum() >= 2:
            extra["merge"] += 1
        elif (covers[int(lies_on[:, j].argmax())] > 0.2).sum() >= 2:
            extra["piece"] += 1
        else:
            extra["size"] += 1
    return missed, extra, int(matched_truth.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chromosome_model_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, info = load_cellpose(args.model, torch.device("cpu"))
    settings = SegmentSettings.of_track("chromosomes")
    trained = info["metadata"]["object_diameter"]
    names = ("model", "DAPI only", "baseline")
    totals = {name: [Counter(), Counter(), 0] for name in names}
    for item in iter_sheet(args.sheet):
        if item.truth is None:
            continue
        truth = item.truth_pieces
        dapi_only, diameter, _ = segment_spread(model, item.dapi, settings, trained)
        found = {
            "model": colour_merged(dapi_only, item.colours, settings, diameter),
            "DAPI only": dapi_only,
            "baseline": threshold_components(item.dapi),
        }
        for name, pred in found.items():
            missed, extra, matched = error_causes(truth, pred)
            totals[name][0] += missed
            totals[name][1] += extra
            totals[name][2] += matched
    rows = []
    for kind, causes in (("missed truth", MISSED), ("unmatched prediction", EXTRA)):
        for cause in causes:
            index = 0 if kind == "missed truth" else 1
            rows.append(
                {"error": kind, "cause": cause,
                 **{name: totals[name][index][cause] for name in names}}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    matched = {name: totals[name][2] for name in totals}
    print(f"{args.model.name} on {args.sheet.name}; matched at IoU 0.5: {matched}")
    print(table.to_string(index=False))
    for name, (missed, extra, tp) in totals.items():
        fp, fn, far = sum(extra.values()), sum(missed.values()), extra["far from truth"]
        print(
            f"{name}: pooled F1@0.5 {score_ratios(tp, fp, fn)['f1']:.3f}; leaving out the "
            f"{far} predictions far from truth {score_ratios(tp, fp - far, fn)['f1']:.3f}"
        )
    write_rows(
        args.json,
        [Row(f"{row['error']}: {row['cause']}", "instances", row["model"], row["baseline"],
             "cpu", "blur + Otsu + components") for row in rows],
    )  # fmt: skip


if __name__ == "__main__":
    main()
