"""Spread statistics (painter calibration) on images whose answers are known by construction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fishline.chromosomes.figures import realism_report
from fishline.chromosomes.realism import STATISTICS, spread_statistics
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings


def _spread(noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three vertical rods (10 px wide; 40, 40 and 30 px long; the last two touching), a
    nucleus-sized disc outside the labels, background 10 and rods 110."""
    rng = np.random.default_rng(0)
    labels = np.zeros((160, 200), np.int32)
    labels[20:60, 20:30] = 1
    labels[20:60, 80:90] = 2
    labels[60:90, 80:90] = 3  # end to end with rod 2
    yy, xx = np.mgrid[:160, :200]
    nucleus = (yy - 110) ** 2 + (xx - 150) ** 2 <= 40**2
    dapi = np.full(labels.shape, 10.0) + 100.0 * ((labels > 0) | nucleus)
    return dapi + noise * rng.standard_normal(dapi.shape), labels


def test_shapes_contacts_and_objects_of_a_known_spread() -> None:
    dapi, labels = _spread()
    values, table = spread_statistics(dapi, labels)
    assert list(values) == list(STATISTICS)
    assert values["chromosomes"] == 3 and len(table) == 3
    assert table["width_px"].to_numpy() == pytest.approx([10, 10, 10], abs=1.5)
    assert table["length_px"].to_numpy() == pytest.approx([40, 40, 30], abs=3)
    assert table["elongation"].to_numpy() == pytest.approx([4, 4, 3], abs=0.5)
    assert values["elongation"] == pytest.approx(4, abs=0.5)  # the median rod
    assert table["touching"].tolist() == [False, True, True]
    assert values["touching"] == pytest.approx(2 / 3)
    assert values["background"] == pytest.approx(10 / 110)
    assert values["brightness"] == pytest.approx(1.0)  # every rod at the same level
    assert values["nuclei"] == 1 and values["debris"] == 0
    assert values["banding"] == pytest.approx(0, abs=1e-6)  # flat rods
    assert values["edge_px"] < 3.5  # a sharp step, seen through the 1 px smoothing
    assert np.isnan(values["overlap"])  # no overlap truth given
    assert values["glow"] == pytest.approx(0, abs=1e-6)  # a flat background


def test_glow_reads_light_scattered_around_the_objects() -> None:
    """A wide blur of the spread added to it (fishline's glow knob does this) lifts the
    background beside the objects above the background far from them; a sharp spread reads 0."""
    dapi, labels = _spread()
    sharp, _ = spread_statistics(dapi, labels)
    wide = cv2.GaussianBlur(dapi.astype(np.float32), (0, 0), 8.0, borderType=cv2.BORDER_REFLECT)
    glowing, _ = spread_statistics(dapi + 0.5 * wide, labels)
    assert sharp["glow"] == pytest.approx(0, abs=1e-6)
    assert 0.02 < glowing["glow"] < 0.5


def test_straightness_of_a_straight_and_a_folded_rod() -> None:
    labels = np.zeros((120, 120), np.int32)
    labels[10:90, 10:20] = 1  # straight, 80 px
    labels[30:110, 60:70] = 2  # an "L": 80 px down, then 40 px right
    labels[100:110, 60:110] = 2
    dapi = 10.0 + 100.0 * (labels > 0)
    _, table = spread_statistics(dapi, labels)
    straight, folded = table["straightness"]
    assert straight == pytest.approx(1.0, abs=0.02)  # the skeleton forks at the corners
    # skeleton arms of about 75 and 45 px at a right angle: hypot / sum = 0.73
    assert folded == pytest.approx(np.hypot(75, 45) / 120, abs=0.05)
    values, _ = spread_statistics(dapi, labels)
    # the spread's values count the chromosomes of at least the median area: the L alone
    assert values["straightness"] == pytest.approx(folded) and values["folded"] == 1.0


def test_noise_blur_and_overlap_are_measured_in_signal_units() -> None:
    dapi, labels = _spread(noise=5.0)  # 5 / 100 of the signal
    values, _ = spread_statistics(dapi, labels)
    assert values["noise"] == pytest.approx(0.05 * 0.97, rel=0.1)  # a 2 px high-pass keeps 97 %
    blurred, _ = spread_statistics(cv2.GaussianBlur(_spread()[0], (0, 0), 2.0), labels)
    assert blurred["edge_px"] > values["edge_px"] + 2
    overlap = np.zeros(labels.shape, bool)
    overlap[20:25, 30:35] = True  # 25 overlap px against 1100 labelled ones
    with_overlap, _ = spread_statistics(_spread()[0], labels, overlap)
    assert with_overlap["overlap"] == pytest.approx(25 / 1125)
    assert with_overlap["touching"] == 1.0  # rod 1 now touches an overlap


def test_realism_report_of_painted_against_itself(tmp_path: Path) -> None:
    settings = replace(
        SpreadSettings(), size=(160, 200), count=(10, 12), length=(30, 40), width=(6, 8)
    )
    sheet = tmp_path / "train/sheet.tsv"
    paint_spreads(settings, "train", 2, 3, tmp_path / "train", sheet, tmp_path / "t.parquet")
    outputs = [tmp_path / name for name in ("realism.tsv", "realism.html", "realism.png")]
    table = realism_report(sheet, {"lab": sheet}, *outputs)
    assert table["statistic"].tolist() == list(STATISTICS)
    ratios = table.set_index("statistic")["painted / real"]
    assert ratios[["width_px", "length_px", "edge_px", "noise"]].tolist() == [1.0] * 4
    spreads = pd.read_csv(outputs[0], sep="\t")
    assert sorted(spreads["source"]) == ["painted"] * 2 + ["real"] * 2
    assert spreads["width_px"].between(5, 10).all()  # painted 6-8 px wide (+-10 %)
    assert "painted training spreads" in outputs[1].read_text() and outputs[2].stat().st_size
