"""Painted against real metaphases, side by side: the statistics that decide segmentation
(chromosome width and length, intensity across and along a chromosome, edge blur, background,
noise, touching and overlap, nuclei and debris per spread; fishline.chromosomes.realism), one table
and one figure. Real spreads come from a metaphase sheet with truth masks (default: the 24
ADIR dev metaphases, ../shared/data/mfish-dev). Usage:
    python benchmarks/realism_chromosomes.py [--sheet resources/mfish_dev.tsv] [--painted 24]
        [--config my.yaml] [--figure realism.png] [--tsv realism.tsv]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from rows import Row, add_json_argument, write_rows

from fishline.chromosomes.figures import realism_figure
from fishline.chromosomes.realism import measure_sheet, side_by_side
from fishline.metaphase_sheet import iter_sheet
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings
from fishline.schema import validate

ROOT = Path(__file__).resolve().parents[1]


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
    real_spread, real_chrom = measure_sheet(args.sheet, "real")
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder) / "sheet.tsv"
        tables = Path(folder) / "instances.parquet"
        paint_spreads(
            SpreadSettings.from_config(paint),
            "painted",
            args.painted,
            args.seed,
            folder,
            sheet,
            tables,
        )
        painted_spread, painted_chrom = measure_sheet(sheet, "painted")
        examples = {
            f"real {real_spread['spread'].iloc[0]}": next(iter_sheet(args.sheet)).dapi,
            "painted": next(iter_sheet(sheet)).dapi,
        }
    spreads = pd.concat([real_spread, painted_spread], ignore_index=True)
    table = side_by_side(spreads)
    print(
        f"{len(real_spread)} real spreads ({args.sheet}) vs {len(painted_spread)} painted "
        f"(chromosomes.paint of {args.config or 'the defaults'}); median [quartiles] per spread"
    )
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    realism_figure(examples, pd.concat([real_chrom, painted_chrom]), args.figure)
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
