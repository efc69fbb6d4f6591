"""Every stage's benchmark in one table: stage, unit, ours, baseline, ratio, device.

Runs each benchmark script in its own process (its own table goes to the log), collects the
rows it writes with ``--json`` and prints them together. GPU rows appear when CUDA is
present (the scripts add them). Usage:
    python benchmarks/run_all.py [--scale quick|full] [--only paint_fish segment] [--tsv out.tsv]
        [--slides-models resources/models/nuclei_cellpose.pt resources/models/fish_classifier.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
# script -> arguments at each scale ("full" = the script's own defaults)
BENCHMARKS: dict[str, dict[str, list[str]]] = {
    "paint_fish": {"quick": ["--n", "4000", "--reference-n", "30"], "full": []},
    "train_fish": {"quick": ["--steps", "4"], "full": []},
    "segment": {"quick": ["--images", "2", "--epochs", "1"], "full": []},
    "segment_tiles": {"quick": ["--tiles", "512"], "full": []},  # the shipped chromosome model
    "bbdm": {"quick": ["--steps", "2", "--calls", "1"], "full": []},
    "simsearch": {"quick": ["--repeats", "2"], "full": []},
    "simsearch_train": {"quick": ["--strategies", "pos_neg_selflearn"], "full": []},
    "slide_verdicts": {"quick": ["--seeds", "1"], "full": []},  # the shipped models
    "malloc_env": {"quick": ["--crops", "100", "--spreads", "1", "--repeats", "1"], "full": []},
    "embed_batch": {"quick": ["--crops", "100", "--batches", "2", "--repeats", "1"], "full": []},
}
# needs trained models: run when --slides-models NUCLEI CLASSIFIER is given
SLIDES = {"quick": ["--fields", "1", "--threads", "2"], "full": []}


def machine() -> str:
    """One line naming the machine the figures came from."""
    line = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        line += f", {torch.cuda.get_device_name(0)}"
    return line


def run(name: str, arguments: list[str], log: Path) -> pd.DataFrame:
    """Run one benchmark script; its rows as a frame (its printed table goes to ``log``)."""
    with tempfile.TemporaryDirectory() as folder:
        rows = Path(folder) / "rows.json"
        command = [sys.executable, str(HERE / f"{name}.py"), *arguments]
        with log.open("a") as out:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            started = time.perf_counter()
            subprocess.run(
                [*command, "--json", str(rows)], stdout=out, stderr=subprocess.STDOUT, check=True
            )
            out.write(f"({time.perf_counter() - started:.0f} s)\n\n")
        return pd.DataFrame(json.loads(rows.read_text())).assign(benchmark=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--log", type=Path, default=Path("benchmarks.log"))
    parser.add_argument("--tsv", type=Path, help="also write the table here")
    parser.add_argument(
        "--slides-models",
        nargs=2,
        metavar=("NUCLEI", "CLASSIFIER"),
        help="trained nucleus and FISH classifier models: adds benchmarks/slides.py",
    )
    args = parser.parse_args()
    args.log.write_text(f"machine: {machine()}\n\n")
    jobs = [(name, BENCHMARKS[name][args.scale]) for name in args.only]
    if args.slides_models:
        nuclei, classifier = args.slides_models
        jobs.append(
            ("slides", ["--nuclei", nuclei, "--classifier", classifier, *SLIDES[args.scale]])
        )
    tables = []
    for name, arguments in jobs:
        print(f"running {name} ({args.scale}) ...", file=sys.stderr, flush=True)
        tables.append(run(name, arguments, args.log))
    table = pd.concat(tables, ignore_index=True)
    table["baseline"] = pd.to_numeric(table["baseline"])  # rows without one hold null
    table["ratio"] = table["ours"] / table["baseline"]
    columns = ["stage", "unit", "ours", "baseline", "ratio", "device", "baseline_name"]
    print(f"machine: {machine()}; scale {args.scale}; each script's own table: {args.log}")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-"))
    if args.tsv:
        table[columns].to_csv(args.tsv, sep="\t", index=False)


if __name__ == "__main__":
    main()
