"""Chromosome segmentation speed on painted 517 x 645 metaphases: Cellpose training seconds per
epoch, Cellpose segmentation and chromosome cropping seconds per image, against a classical
Otsu + connected-components segmentation measured in the same run (the baseline a lab
would script itself; it cannot split touching chromosomes). Usage:
    python benchmarks/segment.py [--images 4] [--epochs 3] [--threads 2] [--model cellpose.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rows import Row, add_json_argument, write_rows

from fishline.chromosomes.crops import crop_instance
from fishline.instances import instance_scores, threshold_components
from fishline.metaphase_sheet import iter_sheet
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings
from fishline.schema import validate
from fishline.segment import (
    CellposeTrainSettings,
    SegmentSettings,
    estimate_diameter,
    load_cellpose,
    segment_dapi,
    train_cellpose,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="painted spreads to segment")
    parser.add_argument("--epochs", type=int, default=3, help="Cellpose epochs to time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="a trained fishline Cellpose model (else: train here)")
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validate({}, "config", "defaults")["chromosomes"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        for split, n in (("train", 8), ("test", args.images)):
            paint_spreads(
                SpreadSettings.from_config(config["paint"]),
                split,
                n,
                7,
                folder / split,
                folder / f"{split}/sheet.tsv",
                folder / f"{split}.parquet",
            )
        paint_seconds = (time.perf_counter() - started) / (8 + args.images)
        rows.append(("paint spread (517x645)", "s/image", paint_seconds, None))
        settings = CellposeTrainSettings.from_config(
            {**config["cellpose"], "epochs": args.epochs, "images_per_epoch": 16}
        )
        train_cellpose(
            folder / "train/sheet.tsv",
            None,
            settings,
            0,
            args.threads,
            "cpu",
            folder / "model.pt",
            folder / "history.parquet",
        )
        model_path = Path(args.model) if args.model else folder / "model.pt"
        trained = torch.load(folder / "model.pt", weights_only=False)["metadata"]
        rows.append(
            ("Cellpose training, 16 tiles of 128 px", "s/epoch", trained["seconds_per_epoch"], None)
        )
        model, _ = load_cellpose(model_path, torch.device("cpu"))
        segment = SegmentSettings.from_config(config["segment"])
        segment_times, baseline_times, crop_times, scores = [], [], [], []
        for item in iter_sheet(folder / "test/sheet.tsv"):
            started = time.perf_counter()
            labels = segment_dapi(model, item.dapi, segment, estimate_diameter(item.dapi))
            segment_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            baseline = threshold_components(item.dapi)
            baseline_times.append(time.perf_counter() - started)
            channels = np.stack([item.dapi, item.paint["red"], item.paint["green"]])
            started = time.perf_counter()
            for instance in np.unique(labels[labels > 0]):
                crop_instance(channels, labels, int(instance), 64, 0.9, True)
            crop_times.append(time.perf_counter() - started)
            truth = item.truth_pieces
            scores.append(
                (
                    instance_scores(truth, labels, 0.5)["f1"],
                    instance_scores(truth, baseline, 0.5)["f1"],
                )
            )
        seg, base = float(np.mean(segment_times)), float(np.mean(baseline_times))
        rows.append(("segment: Cellpose", "s/image", seg, base))
        rows.append(("crop all chromosomes (64 px)", "s/image", float(np.mean(crop_times)), None))
        f1 = np.mean(scores, axis=0)
    table = pd.DataFrame(rows, columns=["stage", "unit", "fishline", "baseline"])
    table["ratio"] = table["fishline"] / table["baseline"]
    print(f"CPU, {args.threads} threads; baseline = Otsu + connected components")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    model_note = args.model or f"trained here for {args.epochs} epochs (timing only)"
    print(
        f"F1@0.5 on the {args.images} painted spreads: Cellpose {f1[0]:.3f} ({model_note}), "
        f"Otsu baseline {f1[1]:.3f}"
    )
    write_rows(
        args.json,
        [
            Row(stage, unit, ours, base, "cpu", "Otsu + components" if base else "")
            for stage, unit, ours, base in rows
        ],
    )


if __name__ == "__main__":
    main()
