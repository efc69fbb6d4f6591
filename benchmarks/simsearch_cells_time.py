"""Seconds to call N cells from 5 labelled cells per class, as a notebook would: build the
extractor, ``CellClassifier.fit`` on the examples with the N cells as unlabelled ones, then
``predict`` on the N cells. The full call (separate channels, learned channel weights,
linear head, label-spreading self-learning) against the baseline (mixed channels, nearest
prototype, no self-learning), in the same run. Usage:
    python benchmarks/simsearch_cells_time.py [--cells 800] [--threads 2] [--repeats 2]

Cells are masked crops of painted GFP cells (the demo's painter, ``config/config.yaml``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rows import Row, add_json_argument, write_rows

from fishline.config import load_config
from fishline.paint.cellfields import CLASSES, CellFieldSettings
from fishline.simsearch.cells import CellClassifier, painted_cell_crops
from fishline.simsearch.features import FeatureExtractor

ROOT = Path(__file__).resolve().parents[1]
CALLS = {
    "baseline: mixed channels, prototypes": {
        "channels": "mixed",
        "head": "prototypes",
        "learn_weights": False,
        "self_learning": False,
    },
    "separate, learned weights, linear, self-learning": {
        "channels": "separate",
        "head": "linear",
        "learn_weights": True,
        "self_learning": True,
    },
}


def time_call(crops: list[np.ndarray], classes: np.ndarray, settings: dict) -> tuple[float, float]:
    """Seconds for extractor + fit + predict, and the accuracy on the non-example cells."""
    rng = np.random.default_rng(0)
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(classes == c), 5, replace=False) for c in sorted(set(classes))]
    )
    started = time.perf_counter()
    extractor = FeatureExtractor("efficientnet_lite0", (48, 48), 2, channels=settings["channels"])
    classifier = CellClassifier(
        extractor, head=settings["head"], learn_weights=settings["learn_weights"]
    )
    unlabelled = crops if settings["self_learning"] else None
    classifier.fit([crops[i] for i in chosen], classes[chosen], unlabelled)
    calls = classifier.predict(crops)
    seconds = time.perf_counter() - started
    rest = np.setdiff1d(np.arange(len(crops)), chosen)
    right = calls["predicted_class"].to_numpy()[rest] == classes[rest]
    return seconds, float(right.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paint = load_config(ROOT / "config/config.yaml")["simsearch"]["paint"]
    settings = replace(CellFieldSettings.from_config(paint), classes=dict.fromkeys(CLASSES, 1))
    crops, classes, fields = [], np.zeros(0, dtype=object), 0
    while len(crops) < args.cells:
        more, labels = painted_cell_crops(settings, 4, 100 + fields)
        crops += more
        classes = np.concatenate([classes, labels])
        fields += 4
    crops, classes = crops[: args.cells], classes[: args.cells]
    rows = []
    for name, call in CALLS.items():
        times, accuracy = [], 0.0
        for _ in range(args.repeats):
            seconds, accuracy = time_call(crops, classes, call)
            times.append(seconds)
        rows.append({"call": name, "seconds": min(times), "accuracy %": 100 * accuracy})
    table = pd.DataFrame(rows)
    print(f"{len(crops)} painted cells, 5 examples per class, {args.threads} threads")
    print(table.round(2).to_string(index=False))
    base = float(table["seconds"].iloc[0])
    write_rows(
        args.json,
        [Row(f"fit + predict {len(crops)} cells, {row['call']}", "s", row["seconds"], base,
             "cpu", "mixed channels, prototypes") for row in rows],
    )  # fmt: skip


if __name__ == "__main__":
    main()
