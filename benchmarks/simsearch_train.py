"""SimSearch training and detection speed with the CPU-demo defaults (TrainSettings()):
seconds to train each strategy on a synthetic set of ~300 clean and ~1500 noisy 2-channel
48 px patches, and sliding-window detection seconds per 1024 x 1024 image. Random patches:
this measures speed, not accuracy (the ablation does that). No baseline. Usage:
    python benchmarks/simsearch_train.py [--threads 2] [--device cpu] [--stride 12]
        [--strategies pos,pos_neg_selflearn]
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

from fishline import models
from fishline.simsearch.detect import probability_maps
from fishline.simsearch.settings import TrainSettings
from fishline.simsearch.train import STRATEGIES, train_simsearch

CLASSES = ["nuclear", "cytoplasmic", "background"]


def synthetic_set(count: int, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """``count`` random uint8 2 x 48 x 48 patches, labels of CLASSES, ~10 % nuclear negatives."""
    stack = rng.integers(0, 256, (count, 2, 48, 48), dtype=np.uint8)
    table = pd.DataFrame({"index": np.arange(count), "label": rng.choice(CLASSES, count)})
    table["role"] = np.where(table["label"] == "background", "background", "positive")
    table["negative_of"] = None
    negative = rng.random(count) < 0.1
    table.loc[negative, ["label", "role", "negative_of"]] = ["background", "negative", "nuclear"]
    return stack, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stride", type=int, default=12, help="detection stride (pixels)")
    parser.add_argument("--strategies", default="pos,pos_neg_selflearn")
    add_json_argument(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clean, noisy = synthetic_set(300, rng), synthetic_set(1500, rng)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / "model.pt"
        for strategy in args.strategies.split(","):
            if strategy not in STRATEGIES:
                parser.error(f"unknown strategy {strategy}")
            info = train_simsearch(
                clean,
                noisy,
                TrainSettings(),
                strategy,
                0,
                args.device,
                args.threads,
                str(model_path),
                str(Path(folder) / "history.parquet"),
            )
            rows.append((f"train {strategy} (300 clean, 1500 noisy)", "s", info["seconds"]))
        model, _ = models.load(model_path)
        image = rng.random((2, 1024, 1024), dtype=np.float32)
        device = torch.device("cuda" if args.device == "cuda" else "cpu")
        size = TrainSettings().input_size
        probability_maps(model, image[:, :256, :256], (48, 48), args.stride, device, 512, size)
        started = time.perf_counter()
        probability_maps(model, image, (48, 48), args.stride, device, 512, size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rows.append(
            (f"detect 1024 x 1024, stride {args.stride}", "s/image", time.perf_counter() - started)
        )
    table = pd.DataFrame(rows, columns=["stage", "unit", "fishline"])
    print(f"{args.device}, {args.threads} threads")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    write_rows(args.json, [Row(stage, unit, ours, None, args.device) for stage, unit, ours in rows])


if __name__ == "__main__":
    main()
