"""Chromosomes II rules end to end on written crop sets (the tiny Cellpose finds none).

Only the Chromosomes II rules are allowed, so the crop sets written here stand in for
Chromosomes I's outputs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_helpers import job_environment

from fishline.io import encode_pages, read_patch_set, write_stack

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RULES = [
    "bbdm_train",
    "bbdm_sample",
    "cyclegan_train",
    "cyclegan_sample",
    "chrom_train",
    "chrom_features",
    "umap_filter",
    "chrom_compare",
]
TARGETS = [
    "results/chromosomes/report/compare.html",
    "results/chromosomes/report/filter_umap.png",
    "results/chromosomes/report/filter_ssim.png",
    "results/chromosomes/report/filter_summary.html",
    "results/chromosomes/report/bbdm_gallery.png",
]
pytestmark = pytest.mark.workflow


def _write_crops(folder: Path, name: str, labels: list[str] | None, n: int, seed: int) -> None:
    """Chromosome-like crops: a DAPI rod; aberrations red on one part, normals one colour."""
    rng = np.random.default_rng(seed)
    stack = np.zeros((n, 3, 32, 32), np.uint8)
    for i in range(n):
        width, left = int(rng.integers(3, 5)), int(rng.integers(12, 16))
        top, bottom = int(rng.integers(3, 7)), int(rng.integers(25, 29))
        stack[i, 0, top:bottom, left : left + 2 * width] = rng.integers(90, 200)
        label = labels[i] if labels else "unknown"
        if label == "aberration":
            stack[i, 1, top : (top + bottom) // 2, left : left + 2 * width] = 200
        elif rng.random() < 0.3:
            stack[i, 2, top:bottom, left : left + 2 * width] = 180
    table = pd.DataFrame(
        {"index": np.arange(n), "sample": f"{name}_000", "instance": np.arange(1, n + 1)}
    )
    if labels:
        table["label"] = labels
    write_stack(
        folder / f"{name}.tif", encode_pages(stack, "zlib"), stack.shape, np.uint8,
        ("dapi", "red", "green"), "zlib",
    )  # fmt: skip
    table.to_parquet(folder / f"{name}.parquet", index=False)


def test_chromosomes2_rules_run(tmp_path: Path) -> None:
    crops = tmp_path / "results/chromosomes/crops"
    crops.mkdir(parents=True)
    _write_crops(crops, "train", ["normal"] * 24 + ["aberration"] * 12 + ["unmatched"] * 2, 38, 0)
    _write_crops(crops, "test", ["normal"] * 12 + ["aberration"] * 6, 18, 1)
    _write_crops(crops, "unannotated", None, 10, 2)
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    config["chromosomes"]["compare"]["enabled"] = True
    # plain only: the filter's features still come from the augmented real-data classifier
    config["chromosomes"]["compare"]["augmentation"] = ["plain"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory",
        str(tmp_path), "--configfile", str(path), "--cores", "2", "--allowed-rules", *RULES,
        "--", *TARGETS,
    ]  # fmt: skip
    env = job_environment(tmp_path, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    results = tmp_path / "results/chromosomes"
    images, table = read_patch_set(
        results / "generated/bbdm.tif", results / "generated/bbdm.parquet"
    )
    assert images.shape == (10, 3, 32, 32) and (table["label"] == "aberration").all()
    kept = pd.read_parquet(results / "filter/kept_bbdm.parquet")
    assert list(kept["index"]) == list(range(10))
    assert kept["kept"].equals(kept["inside_weight"])  # the configured (paper) rule
    assert kept["max_ssim"].between(-1, 1).all()
    compare = pd.read_csv(results / "compare/compare.tsv", sep="\t")
    assert len(compare) == 4 and set(compare["seeds"]) == {1}
    assert not compare["augmentation"].any()
    assert (results / "classifier/real/augmented/seed_0.pt").exists()  # the filter's features
    synthetic = dict(zip(compare["training data"], compare["synthetic crops"], strict=False))
    assert synthetic["real"] == 0 and synthetic["real + BBDM"] == 10
    assert synthetic["real + filtered BBDM"] == int(kept["kept"].sum())
    assert synthetic["real + CycleGAN"] == 10
    summary = pd.read_csv(results / "filter/summary.tsv", sep="\t")
    assert list(summary["generator"]) == ["bbdm", "cyclegan"]
    model = torch.load(results / "bbdm/model.pt", weights_only=False)
    assert model["kind"] == "bbdm_unet" and model["metadata"]["steps"] == 4
    for rule in RULES:
        assert any((tmp_path / "logs" / rule).glob("*.log")), rule
    # nothing left to do; a sampling setting reruns sampling and what uses the samples only
    dry = [*command[:-6], "-n", "--", *TARGETS]
    again = subprocess.run(dry, capture_output=True, text=True, env=env)
    assert "Nothing to be done" in again.stdout + again.stderr
    config["chromosomes"]["bbdm"]["sample"]["eta"] = 0.5
    path.write_text(yaml.safe_dump(config))
    changed = subprocess.run(dry, capture_output=True, text=True, env=env)
    text = changed.stdout + changed.stderr
    table = text.split("Job stats:")[1].split("total")[0]
    plan = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    assert plan == {
        "bbdm_sample": 1,
        "chrom_features": 1,
        "umap_filter": 1,
        "chrom_train": 2,  # BBDM and filtered BBDM, plain
        "chrom_compare": 1,
    }
