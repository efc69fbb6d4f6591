"""Self-training on unannotated spreads: what is painted over, and a tiny fine-tuning on
pseudo-masks that never reads the truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from fishline.chromosomes.figures import segmentation_table
from fishline.chromosomes.self_training import (
    paint_over_unexplained,
    pseudo_label,
    self_train,
    with_painted,
)
from fishline.errors import InputError
from fishline.metaphase_sheet import read_sheet
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings
from fishline.segment import CellposeTrainSettings, SegmentSettings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources/models/chromosomes_cellpose.pt"


def three_objects() -> tuple[np.ndarray, np.ndarray]:
    """A noisy DAPI image with a labelled rod, an unlabelled rod and an unlabelled
    nucleus-sized disc, and the labels (the first rod only)."""
    rng = np.random.default_rng(0)
    dapi = rng.normal(100.0, 4.0, (96, 160)).astype(np.float32)
    dapi[10:40, 10:16] += 900  # labelled rod
    dapi[50:80, 10:16] += 900  # missed rod
    yy, xx = np.mgrid[:96, :160]
    dapi[(yy - 48) ** 2 + (xx - 110) ** 2 < 30**2] += 600  # nucleus: 2800 px, 15 rods
    labels = np.zeros(dapi.shape, np.uint16)
    labels[10:40, 10:16] = 1
    return dapi, labels


def test_only_the_unexplained_chromosome_is_painted_over() -> None:
    dapi, labels = three_objects()
    image, painted = paint_over_unexplained(dapi, labels, np.random.default_rng(1))
    assert painted == 1 and image.dtype == np.float32
    missed = image[50:80, 10:16]
    assert abs(float(missed.mean()) - 100.0) < 10 and 1 < float(missed.std()) < 10
    np.testing.assert_array_equal(image[10:40, 10:16], dapi[10:40, 10:16])  # explained
    np.testing.assert_array_equal(image[30:66, 95:125], dapi[30:66, 95:125])  # nucleus kept
    again, _ = paint_over_unexplained(dapi, labels, np.random.default_rng(1))
    np.testing.assert_array_equal(image, again)  # seeded
    same, none = paint_over_unexplained(dapi, np.zeros_like(labels), np.random.default_rng(1))
    assert none == 0 and np.array_equal(same, dapi)  # no masks: no size to judge by


def test_self_training_fine_tunes_on_pseudo_masks_without_reading_truth(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    paint = {**config["chromosomes"]["paint"], "size": [160, 192], "count": [8, 10]}
    paint["nuclei"] = {**paint["nuclei"], "count": [0, 0]}
    sheet = tmp_path / "lab/sheet.tsv"
    paint_spreads(
        SpreadSettings.from_config(paint), "lab", 2, 3, tmp_path / "lab", sheet, tmp_path / "i.pq"
    )
    for mask in pd.read_csv(sheet, sep="\t")["mask"]:
        (sheet.parent / mask).write_bytes(b"not a TIFF")  # reading the truth would fail
    painted = tmp_path / "train/sheet.tsv"  # labelled painted spreads trained on as well
    paint_spreads(
        SpreadSettings.from_config({**paint, "size": [192, 240]}),
        "train",
        1,
        3,
        painted.parent,
        painted,
        tmp_path / "p.pq",
    )
    settings = {"paint_over": True, "epochs": 1, "images_per_epoch": 2, "learning_rate": 0.002}
    cellpose = CellposeTrainSettings.from_config(
        {**config["chromosomes"]["cellpose"], "batch_size": 2, "tile": 64}
    )
    out = tmp_path / "out"
    summary = self_train(
        SHIPPED,
        {"lab": sheet},
        painted,
        settings,
        cellpose,
        SegmentSettings.from_config(config["chromosomes"]["segment"]),
        seed=3,
        threads=1,
        device="cpu",
        pseudo_out=out / "pseudo",
        model_out=out / "tuned.pt",
        history_out=out / "history.parquet",
    )
    assert list(summary["sample"]) == ["lab_000", "lab_001"] and set(summary["set"]) == {"lab"}
    assert (summary["pseudo_chromosomes"] > 0).all() and (summary["painted_over"] >= 0).all()
    training = pd.read_csv(out / "pseudo/sheet.tsv", sep="\t")
    assert list(training["sample"]) == ["lab.lab_000", "lab.lab_001"]
    for row in training.to_dict("records"):
        masks = tifffile.imread(out / "pseudo" / row["mask"])
        found = summary.set_index("sample").loc[row["sample"].split(".", 1)[1]]
        assert len(np.unique(masks)) - 1 == found["pseudo_chromosomes"]
        assert tifffile.imread(out / "pseudo" / row["image"]).shape == masks.shape
    both = read_sheet(with_painted(out / "pseudo/sheet.tsv", painted, tmp_path / "both.tsv"))
    assert list(both["sample"]) == ["lab.lab_000", "lab.lab_001", "train_000"]
    assert all(Path(path).is_file() for path in [*both["image"], *both["mask"]])
    assert len(pd.read_parquet(out / "history.parquet")) == 1
    tuned = torch.load(out / "tuned.pt", weights_only=False)
    start = torch.load(SHIPPED, weights_only=False)["state_dict"]
    assert any(not torch.equal(v.float(), start[k].float()) for k, v in tuned["state_dict"].items())
    assert not list(out.glob(".*partial"))


def test_report_table_puts_the_painted_row_above_the_self_trained_one(tmp_path: Path) -> None:
    def metrics(name: str, f1: float) -> str:
        keys = ("ap", "f1", "precision", "recall", "tp", "fp", "fn")
        values = {f"{key}@{iou}": f1 for key in keys for iou in ("0.5", "0.75")}
        values |= {f"baseline_{key}@0.5": 0.5 for key in ("f1", "precision", "recall")}
        values |= {"has_truth": True, "images": 3, "instances_per_image": 45.0}
        values |= {"truth_instances_per_image": 46.0, "count_error_per_image": 2.0}
        (tmp_path / name).write_text(json.dumps(values))
        return str(tmp_path / name)

    table = segmentation_table(
        {"test": metrics("test.json", 0.95), "lab": metrics("lab.json", 0.84)},
        tmp_path / "t.tsv",
        tmp_path / "t.html",
        target=0.9,
        before_self_training={"lab": metrics("before.json", 0.83)},
    )
    assert list(zip(table["set"], table["model"], table["f1@0.5"], strict=True)) == [
        ("test", "painted", 0.95),
        ("lab", "painted", 0.83),
        ("lab", "self-trained", 0.84),
    ]
    assert "self-trained" in (tmp_path / "t.html").read_text()


def test_spreads_without_any_chromosome_stop_with_one_clear_message(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    tifffile.imwrite(tmp_path / "blank.tif", np.full((96, 96), 100, np.uint16))
    sheet = tmp_path / "lab.tsv"
    sheet.write_text("sample\timage\tdapi\ns1\tblank.tif\t0\n")
    segment = SegmentSettings.from_config(config["chromosomes"]["segment"])
    with pytest.raises(InputError, match="found no chromosome in any spread") as raised:
        pseudo_label(SHIPPED, {"lab": sheet}, segment, True, 0, 1, "cpu", tmp_path / "out")
    assert str(sheet) in str(raised.value)
