"""CPU seconds (user and kernel) of three typical job workloads with glibc's default allocator
settings (the baseline) and with freed memory kept in the heap (``MALLOC_ENV``: glibc's mmap
and trim thresholds at 4 GiB; not set by the workflow, see benchmarks/README.md), each
workload in its own process, one torch thread, both arms in the same run:

- ``embed``: SimSearch cell embedding (EfficientNet-Lite0 per channel, 48 px crops of two
  channels with their 3 rotations), as rule ``ss_cells`` does;
- ``segment``: the shipped chromosome model on painted spreads (size estimated), as rule
  ``segment``;
- ``train``: SimSearch SupCon + linear-head training on random patches, as ``ss_train``.

Usage:
    python benchmarks/malloc_env.py [--crops 300] [--spreads 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import textwrap

import pandas as pd
from rows import ROOT, Row, add_json_argument, write_rows

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
WORKLOADS = {
    "embed": """
        import numpy as np
        from fishline.simsearch.features import FeatureExtractor
        rng = np.random.default_rng(0)
        crops = [rng.integers(0, 255, (2, 48, 48), dtype=np.uint8) for _ in range({crops})]
        views = [np.rot90(c, k, axes=(1, 2)) for c in crops for k in range(4)]
        FeatureExtractor("efficientnet_lite0", (48, 48), 2, channels="separate").embed(views)
    """,
    "segment": """
        import tempfile
        from pathlib import Path
        from fishline.metaphase_sheet import iter_sheet
        from fishline.paint.metaphase import paint_spreads
        from fishline.paint.spread_settings import SpreadSettings
        from fishline.segment import SegmentSettings, estimate_diameter, load_cellpose
        from fishline.segment import segment_dapi
        model, _ = load_cellpose("resources/models/chromosomes_cellpose.pt", torch.device("cpu"))
        settings = SegmentSettings.of_track("chromosomes")
        with tempfile.TemporaryDirectory() as folder:
            sheet = Path(folder) / "sheet.tsv"
            table = Path(folder) / "s.parquet"
            paint_spreads(SpreadSettings(), "s", {spreads}, 5, Path(folder), sheet, table)
            for item in iter_sheet(sheet):
                segment_dapi(model, item.dapi, settings, estimate_diameter(item.dapi))
    """,
    "train": """
        import tempfile
        from dataclasses import replace
        from pathlib import Path
        import numpy as np
        import pandas as pd
        from fishline.simsearch.settings import TrainSettings
        from fishline.simsearch.train import train_simsearch
        rng = np.random.default_rng(0)
        stack = rng.integers(0, 255, (240, 2, 48, 48), dtype=np.uint8)
        labels = np.array(["a", "b", "background"])[np.arange(240) % 3]
        table = pd.DataFrame({{"index": np.arange(240), "label": labels}})
        settings = TrainSettings()
        settings = replace(settings, supcon=replace(settings.supcon, epochs=6))
        with tempfile.TemporaryDirectory() as folder:
            model, history = str(Path(folder) / "m.pt"), str(Path(folder) / "h.parquet")
            train_simsearch((stack, table), None, settings, "pos", 0, "cpu", 1, model, history)
    """,
}


def cpu_seconds(code: str, environ: dict[str, str]) -> tuple[float, float]:
    """(user, kernel) CPU seconds of ``code`` run in a new Python process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    program = "import torch\ntorch.set_num_threads(1)\n" + textwrap.dedent(code)
    subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=environ, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=300, help="cells embedded (x 4 views)")
    parser.add_argument("--spreads", type=int, default=3, help="painted spreads segmented")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each arm (best kept)")
    add_json_argument(parser)
    args = parser.parse_args()
    plain = {
        key: value
        for key, value in os.environ.items()
        if key not in MALLOC_ENV and key != "GLIBC_TUNABLES"
    }
    plain["OMP_NUM_THREADS"] = "1"
    arms = {"glibc defaults": plain, "heap kept": {**plain, **MALLOC_ENV}}
    rows = []
    for name, code in WORKLOADS.items():
        code = code.format(crops=args.crops, spreads=args.spreads)
        for arm, environ in arms.items():
            runs = [cpu_seconds(code, environ) for _ in range(args.repeats)]
            user, kernel = min(runs, key=sum)
            rows.append({"workload": name, "arm": arm, "user": user, "kernel": kernel})
    table = pd.DataFrame(rows).assign(total=lambda t: t["user"] + t["kernel"])
    wide = table.pivot(index="workload", columns="arm", values="total")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nCPU seconds, heap kept / glibc defaults:")
    print((wide["heap kept"] / wide["glibc defaults"]).round(2).to_string())
    write_rows(
        args.json,
        [
            Row(f"{workload} CPU", "s", ours, wide.loc[workload, "glibc defaults"], "cpu",
                "glibc defaults")
            for workload, ours in wide["heap kept"].items()
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
