"""Labelled real patch sets: sheet checks and the conversion to the painter's geometry."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tifffile

from fishline.errors import InputError
from fishline.fish.real_patches import real_patch_set
from fishline.io import read_patch_set

CLASSES = ["normal", "gain", "amplification"]
PROBES = {"target": "green", "reference": "red"}


def write_rows(tmp_path: Path, rows: list[dict]) -> Path:
    sheet = tmp_path / "patches.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    return sheet


def test_channels_land_in_painter_order_and_scale(tmp_path: Path) -> None:
    # 12-bit data in a 16-bit file, channels stored as (dapi, target, reference).
    image = np.stack([np.full((40, 40), v, np.uint16) for v in (4095, 2048, 1024)])
    tifffile.imwrite(tmp_path / "cell.tif", image, photometric="minisblack")
    rgb = np.zeros((50, 50, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 51  # PNG: red = reference, blue = DAPI
    cv2.imwrite(str(tmp_path / "cell.png"), rgb[..., ::-1])
    sheet = write_rows(
        tmp_path,
        [
            {
                "image": "cell.tif",
                "class_name": "gain",
                "dapi": 0,
                "target": 1,
                "reference": 2,
                "bit_depth": 12,
            },
            {"image": "cell.png", "class_name": "normal", "dapi": 2, "target": 1, "reference": 0},
        ],
    )
    real_patch_set(sheet, CLASSES, PROBES, 32, tmp_path / "r.tif", tmp_path / "r.parquet")
    stack, table = read_patch_set(tmp_path / "r.tif", tmp_path / "r.parquet")
    assert stack.shape == (2, 3, 32, 32) and stack.dtype == np.uint16
    means = stack.reshape(2, 3, -1).mean(axis=2) / 65535  # (red, green, dapi)
    assert means[0] == pytest.approx([1024 / 4095, 2048 / 4095, 1.0], abs=1e-3)
    assert means[1] == pytest.approx([1.0, 0.0, 0.2], abs=1e-3)
    assert table["class_name"].tolist() == ["gain", "normal"]
    assert table["id"].tolist() == ["cell", "cell"]


def test_unknown_class_names_the_row(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    row = {"image": "c.tif", "dapi": 0, "target": 1, "reference": 2}
    sheet = write_rows(
        tmp_path, [{**row, "class_name": "normal"}, {**row, "class_name": "amplified"}]
    )
    with pytest.raises(InputError, match=r"row 3, class_name.*unknown class 'amplified'"):
        real_patch_set(sheet, CLASSES, PROBES, 16, tmp_path / "r.tif", tmp_path / "r.parquet")
    assert not (tmp_path / "r.tif").exists()


def test_wrong_channel_count_names_the_row_and_column(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "gray.tif", np.zeros((8, 8), np.uint8))
    sheet = write_rows(
        tmp_path,
        [{"image": "gray.tif", "class_name": "gain", "dapi": 0, "target": 1, "reference": 2}],
    )
    with pytest.raises(
        InputError, match=r"\(row 2\) \[reference\]: channel 2 requested but the image has 1"
    ):
        real_patch_set(sheet, CLASSES, PROBES, 16, tmp_path / "r.tif", tmp_path / "r.parquet")
    assert not (tmp_path / "r.parquet").exists()
