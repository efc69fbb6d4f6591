"""One row format for every benchmark, so ``run_all.py`` can print a single table.

Each benchmark prints its own table and, given ``--json PATH``, also writes its rows there.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    """One measured figure: ``ours`` against ``baseline`` (same unit, same run) on ``device``."""

    stage: str
    unit: str
    ours: float
    baseline: float | None
    device: str
    baseline_name: str = ""


ROOT = Path(__file__).resolve().parents[1]


def add_chromosome_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` (default: the shipped chromosome model), ``--sheet`` (default: the real
    dev metaphases) and ``--threads``: what the chromosome segmentation benchmarks share."""
    parser.add_argument(
        "--model", type=Path, default=ROOT / "resources/models/chromosomes_cellpose.pt"
    )
    parser.add_argument("--sheet", type=Path, default=ROOT / "resources/mfish_dev.tsv")
    parser.add_argument("--threads", type=int, default=1)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--json PATH`` option every benchmark accepts."""
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")


def write_rows(path: Path | None, rows: list[Row]) -> None:
    """Write ``rows`` as JSON when ``path`` is given."""
    if path is not None:
        path.write_text(json.dumps([asdict(row) for row in rows], indent=1))
