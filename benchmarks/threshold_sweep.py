"""Cellpose mask thresholds against segmentation quality: a chromosome model's flows computed
once per spread, masks made at every (flow threshold, cell-probability threshold) pair, pooled
F1@0.5 on the painted check spreads and, when ../shared is there, on the real dev metaphases
(M-FISH spreads after the colour merge at ``--colour-merge``, the config's default unless
given; 0 = DAPI alone). Prints one table per image set; the row at Cellpose's defaults
(0.4, 0) is the baseline.
Usage:
    python benchmarks/threshold_sweep.py [--model resources/models/chromosomes_cellpose.pt]
        [--sheet resources/mfish_dev.tsv] [--flow 0.3 0.4 0.6] [--cellprob 0 -1 -2 -3 -4 -6]
        [--colour-merge 0.01]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rows import ROOT, Row, add_chromosome_model_arguments, add_json_argument, write_rows

from fishline.instances import instance_scores
from fishline.metaphase_sheet import iter_sheet
from fishline.model_card import paint_check_spreads
from fishline.segment import SegmentSettings, colour_merged, estimate_diameter, load_cellpose


def sweep(
    model,
    trained: float,
    sheet: Path,
    flows: list[float],
    cellprobs: list[float],
    settings: SegmentSettings,
):
    """Pooled TP/FP/FN at IoU 0.5 per (flow, cellprob) pair over the annotated rows of
    ``sheet``; ``settings`` give the smallest mask and the M-FISH colour merge."""
    from cellpose import dynamics

    totals = {(f, c): np.zeros(3) for f in flows for c in cellprobs}
    for item in iter_sheet(sheet):
        if item.truth is None:
            continue
        diameter = estimate_diameter(item.dapi) or trained
        _, outputs, _ = model.eval(
            item.dapi.astype(np.float32), channels=[0, 0], diameter=diameter, compute_masks=False
        )
        iterations = int(200 * diameter / model.diam_mean)  # as Cellpose's eval sets niter
        for flow, cellprob in totals:
            masks = dynamics.resize_and_compute_masks(
                outputs[1], outputs[2], niter=iterations, cellprob_threshold=cellprob,
                flow_threshold=flow, min_size=settings.min_size, device=model.device,
            )  # fmt: skip
            masks = colour_merged(masks.astype(np.int32), item.colours, settings, diameter)
            scores = instance_scores(item.truth_pieces, masks, 0.5)
            totals[(flow, cellprob)] += [scores["tp"], scores["fp"], scores["fn"]]
    rows = []
    for (flow, cellprob), (tp, fp, fn) in totals.items():
        rows.append(
            {"flow": flow, "cellprob": cellprob, "f1": 2 * tp / max(2 * tp + fp + fn, 1),
             "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chromosome_model_arguments(parser)
    parser.add_argument("--flow", type=float, nargs="+", default=[0.3, 0.4, 0.6])
    parser.add_argument("--cellprob", type=float, nargs="+", default=[0, -1, -2, -3, -4, -6])
    parser.add_argument(
        "--colour-merge", type=float, help="M-FISH colour merge distance; default the config's"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, info = load_cellpose(args.model, torch.device("cpu"))
    trained = info["metadata"]["object_diameter"]
    with tempfile.TemporaryDirectory() as folder:
        sets = {"painted check": paint_check_spreads(Path(folder))}
        if (ROOT.parent / "shared/data/mfish-dev").is_dir():
            sets["real dev"] = args.sheet
        settings = SegmentSettings.of_track("chromosomes")
        if args.colour_merge is not None:
            settings = replace(settings, colour_merge=args.colour_merge)
        tables = {name: sweep(model, trained, sheet, args.flow, args.cellprob, settings)
                  for name, sheet in sets.items()}  # fmt: skip
    rows = []
    for name, table in tables.items():
        print(f"\n{name}: pooled F1@0.5, rows flow threshold, columns cellprob threshold")
        print(table.pivot(index="flow", columns="cellprob", values="f1").round(3).to_string())
        base = table[(table["flow"] == 0.4) & (table["cellprob"] == 0)]["f1"]
        for row in table.itertuples():
            rows.append(
                Row(f"{name} F1 flow {row.flow} cellprob {row.cellprob}", "F1", row.f1,
                    float(base.iloc[0]) if len(base) else None, "cpu", "Cellpose defaults")
            )  # fmt: skip
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
