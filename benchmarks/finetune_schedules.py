"""Fine-tuning schedules for a few real annotated metaphases: the shipped chromosome model
fine-tuned on K spreads drawn from the real dev metaphases with each schedule, scored (pooled
F1@0.5, default segmentation settings) on the other spreads and on its own K; the start model
on the same held-out spreads is the baseline. Slow: each schedule is one Cellpose training
(120 epochs x 16 tiles: about 15 min on one CPU thread). Usage:
    python benchmarks/finetune_schedules.py [--k 8] [--draw 1] [--spreads A0503XY ...]
        [--schedules 30x8@0.0005 120x16@0.002] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rows import Row, add_chromosome_model_arguments, add_json_argument, write_rows

from fishline.chromosomes.finetune import fine_tune, subset_sheet
from fishline.instances import pooled_scores
from fishline.metaphase_sheet import read_sheet
from fishline.schema import validate
from fishline.segment import CellposeTrainSettings, SegmentSettings, new_model, score_spreads


def parse_schedule(text: str) -> dict[str, float]:
    """``EPOCHSxTILES@LR`` -> Cellpose training settings."""
    try:
        sizes, rate = text.split("@")
        epochs, tiles = (int(part) for part in sizes.split("x"))
        return {"epochs": epochs, "images_per_epoch": tiles, "learning_rate": float(rate)}
    except ValueError as error:
        raise SystemExit(f"--schedules: '{text}' is not EPOCHSxTILES@LR ({error})") from error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chromosome_model_arguments(parser)
    parser.add_argument("--k", type=int, default=8, help="annotated spreads to fine-tune on")
    parser.add_argument("--draw", type=int, default=1, help="seed of the K spreads drawn")
    parser.add_argument(
        "--spreads", nargs="+", help="fine-tune on these samples instead of a draw of K"
    )
    parser.add_argument("--schedules", nargs="+", default=["30x8@0.0005", "120x16@0.002"])
    add_json_argument(parser)
    args = parser.parse_args()
    schedules = {text: parse_schedule(text) for text in args.schedules}
    torch.set_num_threads(args.threads)
    config = validate({}, "config", "defaults")["chromosomes"]
    rows = read_sheet(args.sheet)
    rows = rows[rows["mask"].notna()].reset_index(drop=True)
    samples = list(rows["sample"])
    if args.spreads:
        unknown = sorted(set(args.spreads) - set(samples))
        if unknown:
            raise SystemExit(f"--spreads: {unknown} are not annotated samples of {args.sheet}")
        chosen = sorted(args.spreads)
    else:
        picked = np.random.default_rng(args.draw).choice(len(samples), args.k, replace=False)
        chosen = sorted(samples[i] for i in picked)
    print(f"fine-tuned on {len(chosen)} spreads: {' '.join(chosen)}")
    device = torch.device("cpu")
    cellpose = CellposeTrainSettings.from_config(config["cellpose"])
    segment = SegmentSettings.from_config(config["segment"])
    results = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        held_out, train = folder / "held_out.tsv", folder / "train.tsv"
        subset_sheet(rows, [s for s in samples if s not in chosen], args.sheet, held_out)
        subset_sheet(rows, chosen, args.sheet, train)

        def scores(model_path: Path, sheet: Path) -> dict[str, float]:
            model = new_model(device, cellpose.diameter, model_path)
            table = score_spreads(model, model.net.diam_labels.item(), sheet, segment)
            return pooled_scores(table)

        start = scores(args.model, held_out)
        results.append({"schedule": "start model", "seconds": 0.0, "f1": start["f1"],
                        "precision": start["precision"], "recall": start["recall"],
                        "f1 on its K": scores(args.model, train)["f1"]})  # fmt: skip
        for text, schedule in schedules.items():
            started = time.perf_counter()
            tuned = fine_tune(args.model, train, cellpose, schedule, args.draw,
                              args.threads, folder)  # fmt: skip
            seconds = time.perf_counter() - started
            result = scores(tuned, held_out)
            results.append({"schedule": text, "seconds": seconds, "f1": result["f1"],
                            "precision": result["precision"], "recall": result["recall"],
                            "f1 on its K": scores(tuned, train)["f1"]})  # fmt: skip
    table = pd.DataFrame(results)
    print(f"\nscored on the other {len(samples) - len(chosen)} spreads, {args.threads} thread(s):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    write_rows(
        args.json,
        [Row(f"fine-tune K={len(chosen)} {row.schedule}", "F1@0.5", row.f1, start["f1"], "cpu",
             "start model") for row in table.itertuples()],
    )  # fmt: skip


if __name__ == "__main__":
    main()
