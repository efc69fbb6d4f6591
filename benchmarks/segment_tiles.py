"""Chromosome segmentation seconds and F1 against Cellpose's inference tile size: the shipped
model (model loaded, size estimated per spread, the default mask thresholds; M-FISH spreads
colour-merged, in the seconds too) on the painted check spreads and, when ../shared is
there, on the 24 real dev metaphases; every tile size
on the same spreads in the same run, 224 (Cellpose's own) the baseline. Usage:
    python benchmarks/segment_tiles.py [--model resources/models/chromosomes_cellpose.pt]
        [--tiles 224 320 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rows import ROOT, Row, add_chromosome_model_arguments, add_json_argument, write_rows

from fishline.instances import instance_scores
from fishline.metaphase_sheet import iter_sheet
from fishline.model_card import paint_check_spreads
from fishline.segment import (
    SegmentSettings,
    colour_merged,
    estimate_diameter,
    load_cellpose,
    segment_dapi,
)

BASELINE = 224


def measure(model, sheet: Path, tiles: list[int]) -> pd.DataFrame:
    """Pooled F1@0.5 and mean segmentation seconds per spread at every tile size."""
    settings = SegmentSettings.of_track("chromosomes")
    totals = {tile: np.zeros(4) for tile in tiles}
    spreads = 0
    for item in iter_sheet(sheet):
        if item.truth is None:
            continue
        spreads += 1
        diameter = estimate_diameter(item.dapi)
        for tile in tiles:
            started = time.perf_counter()
            labels = segment_dapi(model, item.dapi, replace(settings, tile=tile), diameter)
            labels = colour_merged(labels, item.colours, settings, diameter)
            seconds = time.perf_counter() - started
            scores = instance_scores(item.truth_pieces, labels, 0.5)
            totals[tile] += [scores["tp"], scores["fp"], scores["fn"], seconds]
    rows = [
        {"tile": tile, "spreads": spreads, "f1": 2 * tp / max(2 * tp + fp + fn, 1),
         "seconds": seconds / max(spreads, 1)}
        for tile, (tp, fp, fn, seconds) in totals.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chromosome_model_arguments(parser)
    parser.add_argument("--tiles", type=int, nargs="+", default=[224, 320, 512])
    add_json_argument(parser)
    args = parser.parse_args()
    tiles = sorted({BASELINE, *args.tiles})
    torch.set_num_threads(args.threads)
    model, _ = load_cellpose(args.model, torch.device("cpu"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        sets = {"painted check": paint_check_spreads(Path(folder))}
        if (ROOT.parent / "shared/data/mfish-dev").is_dir():
            sets["real dev"] = args.sheet
        for name, sheet in sets.items():
            table = measure(model, sheet, tiles)
            base = table.set_index("tile").loc[BASELINE]
            table["speed-up"] = base["seconds"] / table["seconds"]
            print(f"\n{name} ({int(base['spreads'])} spreads, {args.threads} thread(s)):")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            for row in table.itertuples():
                rows.append(
                    Row(f"{name} segmentation, tile {row.tile}", "s/spread", row.seconds,
                        float(base["seconds"]), "cpu", f"tile {BASELINE}")
                )  # fmt: skip
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
