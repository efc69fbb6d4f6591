"""Self-training on unannotated real metaphases: the chromosome model labels one half of the
real dev spreads (colour merge included; their truth masks are never read), is fine-tuned
on those pseudo-masks and scored on the other half, which it never saw, against itself
before; then the halves swap. With ``--paint-over``, stained objects that its masks leave
unexplained (under a fifth covered, smaller than a nucleus) are painted over with their
surroundings first, so the fine-tuning does not learn the chromosomes it missed as
background. Slow: one fine-tuning per half (120 epochs x 16 tiles: about 8 min on one CPU
thread). Usage:
    python benchmarks/self_training.py [--paint-over] [--split-seed 7]
        [--schedule 120x16@0.002] [--painted SHEET] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from finetune_schedules import parse_schedule
from rows import Row, add_chromosome_model_arguments, add_json_argument, write_rows

from fishline.chromosomes.finetune import fine_tune, subset_sheet
from fishline.chromosomes.self_training import pseudo_label, with_painted
from fishline.instances import pooled_scores
from fishline.metaphase_sheet import read_sheet
from fishline.schema import validate
from fishline.segment import (
    CellposeTrainSettings,
    SegmentSettings,
    new_model,
    score_spreads,
)

FINE_TUNING_SEED = 42
PAINT_OVER_SEED = 0


def halves(samples: list[str], split_seed: int | None) -> tuple[list[str], list[str]]:
    """Two halves with each probe set (the sample name's first letter) split evenly:
    alternate samples in name order, or in a random order of ``split_seed``."""
    groups: dict[str, list[str]] = {}
    for sample in sorted(samples):
        groups.setdefault(sample[0], []).append(sample)
    first: list[str] = []
    second: list[str] = []
    for group in groups.values():
        if split_seed is not None:
            group = [str(s) for s in np.random.default_rng(split_seed).permutation(group)]
        for i, sample in enumerate(group):
            (first if i % 2 == 0 else second).append(sample)
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chromosome_model_arguments(parser)
    parser.add_argument("--paint-over", action="store_true", help="paint over unexplained objects")
    parser.add_argument("--split-seed", type=int, help="random halves (default: alternate)")
    parser.add_argument("--schedule", default="120x16@0.002", help="EPOCHSxTILES@LR")
    parser.add_argument(
        "--painted", type=Path, help="a painted metaphase sheet with truth to train on as well"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validate({}, "config", "defaults")["chromosomes"]
    cellpose = CellposeTrainSettings.from_config(config["cellpose"])
    segment = SegmentSettings.from_config(config["segment"])
    rows = read_sheet(args.sheet)
    rows = rows[rows["mask"].notna()].reset_index(drop=True)
    device = torch.device("cpu")

    def scores(model_path: Path, sheet: Path) -> dict[str, float]:
        model = new_model(device, cellpose.diameter, model_path)
        table = score_spreads(model, model.net.diam_labels.item(), sheet, segment)
        pooled = pooled_scores(table)
        return {
            "f1": pooled["f1"],
            "precision": pooled["precision"],
            "recall": pooled["recall"],
            "dapi_only_f1": pooled_scores(table, "dapi_only_")["f1"],
        }

    results = []
    first, second = halves(list(rows["sample"]), args.split_seed)
    for name, (train, test) in {"A": (first, second), "B": (second, first)}.items():
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            subset_sheet(rows, train, args.sheet, folder / "train.tsv")
            subset_sheet(rows, test, args.sheet, folder / "test.tsv")
            pseudo_label(args.model, {"dev": folder / "train.tsv"}, segment, args.paint_over,
                         PAINT_OVER_SEED, args.threads, "cpu", folder / "pseudo")  # fmt: skip
            training = folder / "pseudo" / "sheet.tsv"
            if args.painted:
                training = with_painted(training, args.painted, folder / "with_painted.tsv")
            # No seed option: Cellpose reseeds its tile draws with the epoch number, so a
            # fine-tuning from fixed weights comes out the same for every torch seed.
            tuned = fine_tune(args.model, training, cellpose, parse_schedule(args.schedule),
                              FINE_TUNING_SEED, args.threads, folder)  # fmt: skip
            for model, path in (("before", args.model), ("self-trained", tuned)):
                results.append(
                    {"labelled": name, "model": model, **scores(path, folder / "test.tsv")}
                )
    table = pd.DataFrame(results)
    print(f"\nscored on the half not labelled ('labelled': the half fine-tuned on; "
          f"{args.threads} thread(s)):")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    before = table[table["model"] == "before"].set_index("labelled")
    after = table[table["model"] == "self-trained"].set_index("labelled")
    write_rows(
        args.json,
        [Row(f"self-training on half {half}, scored on the other", "F1@0.5", after.loc[half, "f1"],
             before.loc[half, "f1"], "cpu", "model before") for half in after.index],
    )  # fmt: skip


if __name__ == "__main__":
    main()
