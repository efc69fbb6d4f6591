"""Does self-learning help the SimSearch detector? Pairs each simulated user's self-learning
strategy with the same user's strategy without it (Pos+Selflearn with Pos, Pos+Neg+Selflearn
with Pos+Neg) over the ablation grid, from the per-cell Parquet files of ablation runs.
Usage:
    python benchmarks/simsearch_self_learning.py BASELINE_CELLS VARIANT_CELLS [...]

Each argument is a folder of ``results/simsearch/ablation/cells/*.parquet`` (copied aside after
a run). BASELINE_CELLS must hold Pos / Pos+Neg rows; each VARIANT_CELLS folder the
self-learning rows of one setting (`simsearch.train.self_learning`, `pseudo_labels`). Users
are seeded by their index, so the same cell name is the same simulated user in every run.
Prints per variant: the grid mean PR AUC with and without self-learning, the mean and SD of
the paired differences, and how many pairs rose and fell.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def cell_rows(folder: Path) -> pd.DataFrame:
    """Every row of the ablation cell files in ``folder`` (cell, strategy, auc, ...)."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise SystemExit(f"{folder}: no ablation cell Parquet files")
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def paired(baseline: pd.DataFrame, variant: pd.DataFrame, name: str) -> dict[str, object]:
    """One table row: the variant's self-learning strategies against the baseline's same users."""
    plain = baseline[baseline["strategy"].isin(["pos", "pos_neg"])]
    learned = variant[variant["strategy"].str.endswith("_selflearn")].assign(
        strategy=lambda frame: frame["strategy"].str.removesuffix("_selflearn")
    )
    both = plain.merge(learned, on=["cell", "strategy"], suffixes=("_none", "_self"))
    if both.empty:
        raise SystemExit(f"{name}: no self-learning rows that pair with the baseline's users")
    change = both["auc_self"] - both["auc_none"]
    return {
        "variant": name,
        "pairs": len(both),
        "without": round(both["auc_none"].mean(), 3),
        "with": round(both["auc_self"].mean(), 3),
        "change": round(change.mean(), 3),
        "change SD": round(change.std(), 3),
        "above": int((change > 0).sum()),
        "below": int((change < 0).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="folder of cell files with Pos / Pos+Neg")
    parser.add_argument("variants", type=Path, nargs="+", help="folders with self-learning rows")
    args = parser.parse_args()
    baseline = cell_rows(args.baseline)
    rows = [paired(baseline, cell_rows(folder), folder.name) for folder in args.variants]
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
