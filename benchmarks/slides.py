"""Slide-call speed on CPU: seconds per painted 1024 x 1024 FISH field, split into nucleus
segmentation (Cellpose), cropping and classification (the FISH classifier), as
``fishline.slides.stages.call_sample`` measures them. Usage:
    python benchmarks/slides.py --nuclei resources/models/nuclei_cellpose.pt \\
        --classifier resources/models/fish_classifier.pt [--fields 3] [--threads 1 2]

Trained models make the timing honest (Cellpose's mask post-processing grows with the number
of nuclei it finds); the field is painted with the paper-scale field settings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from rows import Row, add_json_argument, write_rows

from fishline.config import load_config
from fishline.slides.stages import SlideSettings, call_sample

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclei", required=True, help="fishline Cellpose model file")
    parser.add_argument("--classifier", required=True, help="FISH classifier model file")
    parser.add_argument("--fields", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    add_json_argument(parser)
    args = parser.parse_args()
    config = load_config(ROOT / "config" / "config.yaml")
    fields = {**config["fish"]["fields"], "size": 1024, "nuclei": [35, 60]}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        from fishline.paint import FishPaintSettings, paint_fields
        from fishline.paint.fields import FieldSettings

        paint = FishPaintSettings.from_config(config["fish"]["paint"])

        settings = FieldSettings.from_config({**fields, "n": args.fields})
        paint_fields(paint, settings, 11, folder, folder / "sheet.tsv", folder / "nuclei.parquet")
        samples = pd.read_csv(folder / "sheet.tsv", sep="\t")["sample"]
        for threads in args.threads:
            for sample in samples:
                out = folder / f"{sample}_{threads}"
                outputs = {
                    key: out / name
                    for key, name in {
                        "cells": "cells.parquet", "stack": "crops.tif", "table": "crops.parquet",
                        "timing": "timing.json", "overlay": "overlay.png", "card": "card.html",
                    }.items()
                }  # fmt: skip
                started = time.perf_counter()
                cells = call_sample(folder / "sheet.tsv", sample, args.nuclei, args.classifier,
                                    SlideSettings.from_config(config["slides"]), paint,
                                    outputs, device="cpu",
                                    threads=threads)  # fmt: skip
                total = time.perf_counter() - started
                seconds = json.loads(outputs["timing"].read_text())["seconds"]
                rows.append({"threads": threads, "field": sample, "cells called": len(cells),
                             **seconds, "whole call (incl. loading, figures)": total})  # fmt: skip
    table = pd.DataFrame(rows)
    mean = table.drop(columns="field").groupby("threads").mean().reset_index()
    mean.insert(1, "field", "mean")
    print(pd.concat([table, mean]).round(2).to_string(index=False))
    write_rows(
        args.json,
        [
            Row(
                f"slide call, {stage}, {row['threads']} threads", "s/field", row[stage], None, "cpu"
            )
            for row in mean.to_dict("records")
            for stage in mean.columns
            if stage not in ("threads", "field", "cells called")
        ],
    )


if __name__ == "__main__":
    main()
