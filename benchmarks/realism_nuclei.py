"""Painted against real nucleus fields, side by side: the statistics that decide nucleus
segmentation (size, edge softness relative to size, brightness spread between nuclei and its
bright tail of condensed nuclei, crowding, background, noise), one table. Real: stardist
0.9.2's annotated test image (in its wheel) and, when ../shared is there, the speckles-dev
Hoechst field (no truth: its instances are the watershed baseline's, so read its size and
crowding as estimates). Painted: whole fields of fish.paint + fish.fields (defaults, or
--config). Usage:
    python benchmarks/realism_nuclei.py [--config config/nuclei_pretrain.yaml] [--fields 6]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import yaml

from fishline.chromosomes.realism import spread_statistics
from fishline.instances import object_diameter, watershed_nuclei
from fishline.metaphase_sheet import iter_sheet
from fishline.model_card import stardist_sheet
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings
from fishline.schema import validate
from fishline.slides.training_sets import paint_training_fields

ROOT = Path(__file__).resolve().parents[1]
SPECKLES = ROOT.parent / "shared/data/speckles-dev/1-162hrhoe2.tif"
# statistic -> what it measures (intensities in units of the median nucleus signal)
STATISTICS = {
    "nuclei": "nuclei per field (truth instances)",
    "diameter_px": "median equivalent-circle diameter",
    "cover": "fraction of the field inside a nucleus",
    "touching": "fraction of nuclei touching another",
    "edge/diameter": "edge width (signal / gradient on the mask edge) over the diameter",
    "across": "centre-to-edge intensity fall inside a nucleus",
    "brightness_cv": "spread of median brightness between nuclei (std / mean)",
    "bright_tail": "share of nuclei at 2.5x the median nucleus brightness or more",
    "texture_inside": "intensity spread inside a nucleus (std / signal, on its skeleton)",
    "background": "background level / nucleus level",
    "glow": "light around nuclei: background 0.3 diameters out above the far one / signal",
    "noise": "background pixel noise / signal",
    "unevenness": "background unevenness at 8 px / signal",
}


def field_statistics(dapi: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The ``STATISTICS`` of one field from its DAPI image and nucleus labels."""
    dapi = dapi.astype(np.float32)
    values, _ = spread_statistics(dapi, labels)
    ids = np.unique(labels[labels > 0])
    levels = np.array([np.median(dapi[labels == i]) for i in ids])
    diameter = object_diameter(labels)
    return {
        "nuclei": float(len(ids)),
        "diameter_px": diameter,
        "cover": float((labels > 0).mean()),
        "touching": values["touching"],
        "edge/diameter": values["edge_px"] / diameter if diameter else float("nan"),
        "across": values["across"],
        "brightness_cv": float(np.std(levels) / np.mean(levels)) if len(levels) else np.nan,
        "bright_tail": float(np.mean(levels >= 2.5 * np.median(levels))) if len(levels) else np.nan,
        "texture_inside": values["banding"],
        "background": values["background"],
        "glow": values["glow"],
        "noise": values["noise"],
        "unevenness": values["texture"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="a config whose fish.paint/fields are used")
    parser.add_argument("--fields", type=int, default=6, help="painted fields to measure")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    given = yaml.safe_load(args.config.read_text()) if args.config else {}
    fish = validate(given or {}, "config", "defaults")["fish"]
    columns = {}
    with tempfile.TemporaryDirectory() as folder:
        (real,) = iter_sheet(stardist_sheet(Path(folder) / "real"))
        columns["stardist (real, truth)"] = field_statistics(real.dapi, real.truth)
        if SPECKLES.is_file():
            dapi = tifffile.imread(SPECKLES).astype(np.float32)
            columns["speckles-dev (real, watershed)"] = field_statistics(
                dapi, watershed_nuclei(dapi)
            )
        sheet = paint_training_fields(
            FishPaintSettings.from_config(fish["paint"]),
            FieldSettings.from_config(fish["fields"]),
            args.fields,
            args.seed,
            Path(folder) / "painted",
        )
        painted = pd.DataFrame([field_statistics(f.dapi, f.truth) for f in iter_sheet(sheet)])
    for name, values in columns.items():
        columns[name] = {key: f"{value:.2f}" for key, value in values.items()}
    quartiles = painted.quantile([0.25, 0.5, 0.75])
    columns[f"painted ({args.fields} fields): median [quartiles]"] = {
        key: f"{quartiles.loc[0.5, key]:.2f} [{quartiles.loc[0.25, key]:.2f}, "
        f"{quartiles.loc[0.75, key]:.2f}]"
        for key in STATISTICS
    }
    table = pd.DataFrame(columns)
    table.insert(0, "measures", [STATISTICS[key] for key in table.index])
    print(f"painter: fish.paint + fish.fields of {args.config or 'the defaults'}")
    with pd.option_context("display.max_colwidth", 70, "display.width", 250):
        print(table.to_string())


if __name__ == "__main__":
    main()
