"""Per-cell calls from k labelled cells per class: nearest prototype vs a linear head on the
same frozen SimSearch features (EfficientNet-Lite0, 48 px, the crops and their rotations),
each with and without one round of self-learning, on channels mixed into the backbone's RGB
input or run through it one by one (``--channels``, ``--weights``: DNA, GFP). Usage:
    python benchmarks/simsearch_heads.py [--config OVERRIDES.yaml] [--draws 20]
        [--channels mixed separate] [--weights 1 1] [--learn-weights]

Cells are painted GFP cells (``fishline.paint.cellfields``, noise-free fields, the painter
settings of ``simsearch.paint`` in the given config), masked and cropped by their cell
label; every draw picks k cells per class as examples and scores the others. The prototype
head on mixed channels is the baseline (the row that ratios are taken against).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from rows import Row, add_json_argument, write_rows

from fishline.config import load_config
from fishline.paint.cellfields import CLASSES, CellFieldSettings
from fishline.simsearch.cells import CellClassifier, embed_views, painted_cell_crops
from fishline.simsearch.features import FeatureExtractor

ROOT = Path(__file__).resolve().parents[1]


def head_scores(
    extractor: FeatureExtractor,
    crops: list[np.ndarray],
    classes: np.ndarray,
    examples: list[int],
    draws: int,
    features: str,
    learn_weights: bool = False,
) -> list[dict]:
    """Mean and SD of per-cell accuracy over ``draws`` draws of k examples per class, for
    each head with and without self-learning."""
    views = embed_views(extractor, crops)
    plain = views[:, 0]
    rows = []
    for k in examples:
        scores: dict[str, list[float]] = {}
        for draw in range(draws):
            rng = np.random.default_rng(100 + draw)
            chosen = np.concatenate(
                [rng.choice(np.flatnonzero(classes == c), k, replace=False)
                 for c in sorted(set(classes))]
            )  # fmt: skip
            rest = np.setdiff1d(np.arange(len(classes)), chosen)
            vectors = views[chosen].reshape(-1, views.shape[2])
            labels = np.repeat(classes[chosen], views.shape[1])
            groups = np.repeat(np.arange(len(chosen)), views.shape[1])
            for head in ("prototypes", "linear"):
                for learn in (False, True):
                    model = CellClassifier(
                        extractor, head=head, learn_weights=learn_weights
                    ).fit_vectors(vectors, labels, plain[rest] if learn else None, groups=groups)
                    called = model.predict_vectors(plain[rest])["predicted_class"].to_numpy()
                    name = head + (" + self-learning" if learn else "")
                    scores.setdefault(name, []).append(float((called == classes[rest]).mean()))
        for name, values in scores.items():
            rows.append(
                {"features": features, "examples per class": k, "head": name,
                 "accuracy %": 100 * np.mean(values), "sd": 100 * np.std(values)}
            )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="overrides of config/config.yaml (the demo's cells)")
    parser.add_argument("--fields", type=int, default=8)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--examples", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--channels", nargs="+", default=["mixed", "separate"])
    parser.add_argument("--weights", type=float, nargs=2, help="separate channels' weights")
    parser.add_argument(
        "--learn-weights", action="store_true",
        help="also separate channels weighed as each draw's examples say",
    )  # fmt: skip
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = yaml.safe_load((ROOT / args.config).read_text()) if args.config else {}
    config = load_config(ROOT / "config" / "config.yaml", overrides=overrides)
    settings = replace(
        CellFieldSettings.from_config(config["simsearch"]["paint"]),
        classes=dict.fromkeys(CLASSES, 1),
    )
    crops, classes = painted_cell_crops(settings, args.fields, 7)
    rows = []
    for channels in args.channels:
        extractor = FeatureExtractor(
            "efficientnet_lite0", (48, 48), 2, channels=channels,
            channel_weights=args.weights if channels == "separate" else None,
        )  # fmt: skip
        rows += head_scores(extractor, crops, classes, args.examples, args.draws, channels)
        if channels == "separate" and args.learn_weights:
            rows += head_scores(
                extractor, crops, classes, args.examples, args.draws,
                "separate, learned weights", learn_weights=True,
            )  # fmt: skip
    table = pd.DataFrame(rows)
    print(f"{len(classes)} painted cells ({args.config}), {args.draws} draws per k")
    print(table.round(1).to_string(index=False))
    first = table["features"] == args.channels[0]
    base = table[first & (table["head"] == "prototypes")].set_index("examples per class")
    write_rows(
        args.json,
        [Row(f"per-cell calls, {row['features']}, {row['head']}, k={row['examples per class']}",
             "% right", row["accuracy %"], float(base["accuracy %"][row["examples per class"]]),
             "cpu", f"prototypes, {args.channels[0]}")
         for row in rows],
    )  # fmt: skip


if __name__ == "__main__":
    main()
