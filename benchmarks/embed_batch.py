"""CPU seconds (user and kernel) of SimSearch cell embedding, as rule ``ss_cells`` embeds
(EfficientNet-Lite0 per channel, crops of two channels with their 3 rotations), at several
crops per backbone pass; each batch size in its own process, one torch thread. The baseline
is 64, the default before 2026-12-06; ``fishline.simsearch.features.CPU_BATCH`` is the
default now.

Usage:
    python benchmarks/embed_batch.py [--crops 300] [--batches 64 16 8 2 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os

import pandas as pd
from malloc_env import cpu_seconds
from rows import Row, add_json_argument, write_rows

EMBED = """
    import numpy as np
    from fishline.simsearch.features import FeatureExtractor
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (2, 48, 48), dtype=np.uint8) for _ in range({crops})]
    views = [np.rot90(c, k, axes=(1, 2)) for c in crops for k in range(4)]
    extractor = FeatureExtractor("efficientnet_lite0", (48, 48), 2, channels="separate")
    extractor.embed(views, batch_size={batch})
"""
BASELINE = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=300, help="cells embedded (x 4 views)")
    parser.add_argument("--batches", type=int, nargs="+", default=[BASELINE, 16, 8, 2, 1])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each size (best kept)")
    add_json_argument(parser)
    args = parser.parse_args()
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for batch in dict.fromkeys([BASELINE, *args.batches]):
        code = EMBED.format(crops=args.crops, batch=batch)
        user, kernel = min((cpu_seconds(code, environ) for _ in range(args.repeats)), key=sum)
        rows.append({"batch": batch, "user": user, "kernel": kernel, "total": user + kernel})
    table = pd.DataFrame(rows)
    base = float(table.loc[table["batch"] == BASELINE, "total"].iloc[0])
    table["ratio"] = table["total"] / base
    print(f"{args.crops} cells x 4 views, CPU seconds; ratio against batch {BASELINE}:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    write_rows(
        args.json,
        [
            Row(f"embed {args.crops} cells x 4 views, batch {row.batch}", "CPU s", row.total,
                base, "cpu", f"batch {BASELINE}")
            for row in table.itertuples()
            if row.batch != BASELINE
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
