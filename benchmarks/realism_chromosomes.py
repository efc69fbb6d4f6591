"""Painted against real metaphases, side by side: the statistics that decide segmentation
(chromosome width and length, intensity across and along a chromosome, edge blur, background,
noise, touching and overlap, nuclei and debris per spread; fishline.spread_stats), one table
and one figure. Real spreads come from a metaphase sheet with truth masks (default: the 24
ADIR dev metaphases, ../shared/data/mfish-dev). Usage:
    python benchmarks/realism_chromosomes.py [--sheet resources/mfish_dev.tsv] [--painted 24]
        [--config my.yaml] [--figure realism.png] [--tsv realism.tsv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from rows import Row, add_json_argument, write_rows
from tqdm import tqdm

from fishline.config import read_sample_sheet, validate
from fishline.images import read_file
from fishline.metaphase_sheet import load_row
from fishline.paint.metaphase import CHROM_CHANNELS, paint_spread
from fishline.spread_stats import STATISTICS, spread_statistics

ROOT = Path(__file__).resolve().parents[1]


def real_spreads(sheet: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(sample, DAPI, instance labels, overlap mask) of every sheet row with truth."""
    spreads = []
    for row in read_sample_sheet(sheet, "metaphase_sheet").to_dict("records"):
        if not isinstance(row.get("mask"), str):
            continue
        item = load_row(row, sheet)
        overlap = None
        if pd.notna(row.get("mask_ignore")):
            overlap = read_file(row["mask"])[0] == int(row["mask_ignore"])
        spreads.append((row["sample"], item.dapi, item.truth, overlap))
    return spreads


def painted_spreads(paint: dict, n: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, DAPI, instance labels) of n painted spreads."""
    dapi = CHROM_CHANNELS.index("dapi")
    spreads = []
    for index in tqdm(range(n), desc="paint spreads", unit="spread"):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        image, labels, _ = paint_spread(rng, paint)
        spreads.append((f"painted_{index:03d}", image[dapi], labels))
    return spreads


def measure(spreads: list, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-spread and per-chromosome statistics of a list of spreads."""
    spread_rows, chromosome_rows = [], []
    for name, dapi, labels, *overlap in tqdm(spreads, desc=f"measure {source}", unit="spread"):
        values, table = spread_statistics(dapi, labels, overlap[0] if overlap else None)
        spread_rows.append({"source": source, "spread": name, **values})
        chromosome_rows.append(table.assign(source=source, spread=name))
    return pd.DataFrame(spread_rows), pd.concat(chromosome_rows, ignore_index=True)


def side_by_side(spreads: pd.DataFrame) -> pd.DataFrame:
    """One row per statistic: real and painted median [quartiles], painted / real."""
    rows = []
    for name, meaning in STATISTICS.items():
        cells = {}
        for source in ("real", "painted"):
            values = spreads.loc[spreads["source"] == source, name].dropna()
            quartiles = (
                values.quantile([0.25, 0.5, 0.75]).to_numpy() if len(values) else [np.nan] * 3
            )
            cells[source] = quartiles
        real, painted = cells["real"][1], cells["painted"][1]
        rows.append(
            {
                "statistic": name,
                "real": f"{real:.3g} [{cells['real'][0]:.3g}, {cells['real'][2]:.3g}]",
                "painted": f"{painted:.3g} [{cells['painted'][0]:.3g}, {cells['painted'][2]:.3g}]",
                "painted / real": painted / real if real else np.nan,
                "what": meaning,
            }
        )
    return pd.DataFrame(rows)


def figure(real: list, painted: list, chromosomes: pd.DataFrame, path: Path) -> None:
    """A real and a painted spread at the same scale, and the per-chromosome distributions."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    for ax, (name, dapi, *_), title in (
        (axes[0, 0], real[0], "real"),
        (axes[0, 1], painted[0], "painted"),
    ):
        low, high = np.percentile(dapi, [1, 99.8])
        ax.imshow(np.clip((dapi - low) / max(high - low, 1e-6), 0, 1), cmap="gray")
        ax.set(title=f"{title}: {name}", xticks=[], yticks=[])
    for ax, column, unit in (
        (axes[0, 2], "width_px", "px"),
        (axes[1, 0], "length_px", "px"),
        (axes[1, 1], "edge_px", "px"),
        (axes[1, 2], "banding", "x signal"),
    ):
        for source, colour in (("real", "tab:blue"), ("painted", "tab:orange")):
            values = chromosomes.loc[chromosomes["source"] == source, column]
            ax.hist(values, bins=40, density=True, alpha=0.5, color=colour, label=source)
        ax.set(title=STATISTICS[column].split(":")[0], xlabel=unit)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, default=ROOT / "resources/mfish_dev.tsv")
    parser.add_argument("--painted", type=int, default=24, help="painted spreads to measure")
    parser.add_argument("--config", type=Path, help="a config whose chromosomes.paint is used")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--figure", type=Path, default=Path("realism_chromosomes.png"))
    parser.add_argument("--tsv", type=Path, help="also write the per-spread statistics here")
    add_json_argument(parser)
    args = parser.parse_args()
    given = yaml.safe_load(args.config.read_text()) if args.config else {}
    paint = validate(given or {}, "config", "defaults")["chromosomes"]["paint"]
    if not args.sheet.exists():
        raise SystemExit(f"{args.sheet}: sheet not found (the real spreads live in ../shared)")
    real = real_spreads(args.sheet)
    painted = painted_spreads(paint, args.painted, args.seed)
    real_spread, real_chrom = measure(real, "real")
    painted_spread, painted_chrom = measure(painted, "painted")
    spreads = pd.concat([real_spread, painted_spread], ignore_index=True)
    table = side_by_side(spreads)
    print(
        f"{len(real)} real spreads ({args.sheet}) vs {len(painted)} painted "
        f"(chromosomes.paint of {args.config or 'the defaults'}); median [quartiles] per spread"
    )
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    figure(real, painted, pd.concat([real_chrom, painted_chrom]), args.figure)
    print(f"figure: {args.figure}")
    if args.tsv:
        spreads.to_csv(args.tsv, sep="\t", index=False)
    write_rows(
        args.json,
        [
            Row(f"painted/real {name}", "ratio", float(ratio), None, "cpu")
            for name, ratio in zip(table["statistic"], table["painted / real"], strict=True)
        ],
    )


if __name__ == "__main__":
    main()
