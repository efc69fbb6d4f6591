"""Slide verdicts on painted fields: is each sample's verdict right, how many cells are certain,
and how right are the certain ones? Usage:
    python benchmarks/slide_verdicts.py --classifier resources/models/fish_classifier.pt \\
        [--baseline results/fish/models/joint.pt] [--seeds 1 2 3 5] [--per-field]

Each seed paints one field per class (normal, gain, amplified; the default field painter:
70 % of a tumour field's nuclei carry its status, the rest are normal), and every field is
called as one sample by ``fishline.slides.stages.call_sample`` with the shipped nucleus model and
truth matched by IoU >= 0.5. The issue's goals: every verdict right, at least 60 % of cells
certain, at least 95 % of the certain cells right.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from rows import Row, add_json_argument, write_rows

from fishline.config import load_config
from fishline.paint import FishPaintSettings, paint_fields
from fishline.paint.fields import FieldSettings
from fishline.slides.stages import SlideSettings, call_sample
from fishline.slides.verdicts import summarise

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = {
    "cells": "cells.parquet", "stack": "crops.tif", "table": "crops.parquet",
    "timing": "timing.json", "overlay": "overlay.png", "card": "card.html",
}  # fmt: skip


def call_fields(
    config: dict, folder: Path, seed: int, nuclei: str, classifier: str, threads: int
) -> tuple[list[dict], pd.DataFrame]:
    """Paint one field per class from ``seed`` into ``folder`` and call each as a sample."""
    paint = FishPaintSettings.from_config(config["fish"]["paint"])
    settings = SlideSettings.from_config(config["slides"])
    calls = settings.calls
    sheet, truth = folder / "sheet.tsv", folder / "nuclei.parquet"
    if not sheet.exists():
        fields = {**config["fish"]["fields"], "n": len(paint.classes)}
        paint_fields(paint, FieldSettings.from_config(fields), seed, folder, sheet, truth)
    rows, matched = [], []
    for sample, status in pd.read_csv(sheet, sep="\t")[["sample", "status"]].itertuples(False):
        out = {
            key: folder / classifier.replace("/", "_") / sample / name
            for key, name in OUTPUTS.items()
        }
        cells = call_sample(
            sheet,
            sample,
            nuclei,
            classifier,
            settings,
            paint,
            out,
            cell_labels=truth,
            threads=threads,
        )
        summary = summarise(cells, paint.classes, calls).iloc[0]
        known = cells.dropna(subset=["truth_class"])
        right = known["truth_class"] == known["predicted_class"]
        expected = next(
            (rule.verdict for rule in calls.rules if rule.class_ == status), calls.otherwise
        )
        rows.append(
            {
                "seed": seed,
                "field": sample,
                "status": status,
                "cells": len(cells),
                "matched": len(known),
                "accuracy": right.mean(),
                "certain": known["certain"].mean(),
                "certain accuracy": right[known["certain"]].mean(),
                "verdict": summary["verdict"],
                "right": summary["verdict"] == expected,
            }
        )
        matched.append(known.assign(right=right))
    return rows, pd.concat(matched, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="resources/models/fish_classifier.pt")
    parser.add_argument("--baseline", help="a second classifier scored on the same fields")
    parser.add_argument("--nuclei", default="resources/models/nuclei_cellpose.pt")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-field", action="store_true", help="print every field's row")
    add_json_argument(parser)
    args = parser.parse_args()
    config = load_config(ROOT / "config" / "config.yaml")
    models = [args.classifier, *([args.baseline] if args.baseline else [])]
    pooled, per_field = [], []
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            rows, cells = [], []
            for seed in args.seeds:
                seed_folder = Path(folder) / f"seed_{seed}"
                seed_folder.mkdir(exist_ok=True)
                got, known = call_fields(
                    config, seed_folder, seed, args.nuclei, model, args.threads
                )
                rows += got
                cells.append(known)
            frame, cells = pd.DataFrame(rows), pd.concat(cells, ignore_index=True)
            per_field.append(frame.assign(classifier=model))
            certain = cells[cells["certain"]]
            pooled.append(
                {
                    "classifier": model,
                    "fields": len(frame),
                    "verdicts right": int(frame["right"].sum()),
                    "cells matched": len(cells),
                    "accuracy": cells["right"].mean(),
                    "certain": cells["certain"].mean(),
                    "certain accuracy": certain["right"].mean(),
                }
            )
    if args.per_field:
        print(pd.concat(per_field).round(3).to_string(index=False), "\n")
    table = pd.DataFrame(pooled)
    print(table.round(3).to_string(index=False))
    ours = table.iloc[0]
    base = table.iloc[1] if len(table) > 1 else None
    write_rows(
        args.json,
        [
            Row(
                f"painted fields, {name}",
                unit,
                float(ours[name]),
                None if base is None else float(base[name]),
                "cpu",
                "" if base is None else str(base["classifier"]),
            )
            for name, unit in (
                ("verdicts right", "fields"),
                ("accuracy", "fraction"),
                ("certain", "fraction"),
                ("certain accuracy", "fraction"),
            )
        ],
    )


if __name__ == "__main__":
    main()
