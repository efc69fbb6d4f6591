"""Nucleus segmentation AP on a real image: stardist 0.9.2's bundled test image (real
fluorescence nuclei, 125 truth masks), segmented by a Cellpose model trained on painted
FISH fields only. Usage:
    python benchmarks/nuclei_stardist.py results/fish/slides/models/nuclei.pt [--threads 2]

Prints AP (Cellpose's TP / (TP + FP + FN)), F1, precision and recall at IoU 0.5 and 0.75,
for the object size taken from the model (painted nuclei) and estimated from the image, beside
the classical baseline (fishline.instances.watershed_nuclei); then the missed nuclei and the
unmatched objects at IoU 0.5 sorted by cause (``segment_errors.error_causes``: merged, not
found, too big, ...).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from segment_errors import EXTRA, MISSED, error_causes

from fishline.config import load_config
from fishline.instances import estimate_nucleus_diameter, instance_scores, watershed_nuclei
from fishline.segment import SegmentSettings, load_cellpose, segment_dapi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="fishline Cellpose model file (nuclei)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from stardist.data import test_image_nuclei_2d  # stardist==0.9.2, real data in its wheel

    torch.set_num_threads(args.threads)
    image, truth = test_image_nuclei_2d(return_mask=True)
    model, info = load_cellpose(args.model, torch.device("cpu"))
    settings = load_config("config/config.yaml")["slides"]["segment"]
    settings = SegmentSettings.from_config({**settings, "min_size": 15})  # nuclei ~24 px across
    dapi = image.astype(np.float32) / float(image.max())
    sizes = {
        "model (painted nuclei)": info["metadata"]["object_diameter"],
        "estimated (watershed)": estimate_nucleus_diameter(dapi),
    }
    true_d = np.median(2 * np.sqrt(np.unique(truth[truth > 0], return_counts=True)[1] / np.pi))
    rows, causes = [], {}
    predictions = {
        **{
            name: (d, lambda d=d: segment_dapi(model, dapi, settings, d))
            for name, d in sizes.items()
        },
        "baseline: Li + watershed": (float("nan"), lambda: watershed_nuclei(dapi)),
    }
    for name, (diameter, segment) in predictions.items():
        pred = segment()
        missed, extra, _ = error_causes(truth, pred)
        causes[name] = {**{f"missed: {c}": missed[c] for c in MISSED},
                        **{f"unmatched: {c}": extra[c] for c in EXTRA}}  # fmt: skip
        for iou in (0.5, 0.75):
            scores = instance_scores(truth, pred, iou)
            rows.append({"object size": name, "diameter px": round(diameter, 1), "iou": iou,
                         "truth": int(truth.max() and len(np.unique(truth)) - 1),
                         "predicted": int(len(np.unique(pred)) - 1),
                         **{k: round(v, 3) if isinstance(v, float) else v
                            for k, v in scores.items()}})  # fmt: skip
    print(f"stardist test_image_nuclei_2d: {image.shape}, median truth diameter {true_d:.1f} px")
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nerrors at IoU 0.5 by cause (benchmarks/segment_errors.py):")
    print(pd.DataFrame(causes).to_string())


if __name__ == "__main__":
    main()
