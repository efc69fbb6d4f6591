"""Metaphase painter: the instance table agrees with mask and pixels, paints, translocations."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from fishline.chromosomes.realism import spread_statistics
from fishline.errors import InputError
from fishline.images import connected_pieces
from fishline.metaphase_sheet import Metaphase
from fishline.paint.metaphase import (
    CENTROMERE_INDEX,
    CHROM_CHANNELS,
    Chromosome,
    Piece,
    _exchange,
    paint_spread,
    paint_spreads,
)
from fishline.paint.spread_settings import SpreadSettings
from fishline.schema import default

DAPI, RED, GREEN = (CHROM_CHANNELS.index(c) for c in ("dapi", "red", "green"))


@pytest.fixture
def spread_paint(config: dict[str, Any]) -> dict[str, Any]:
    """Default spread settings with realism off, so pixel values are the painted signals."""
    paint = copy.deepcopy(config["chromosomes"]["paint"])
    for knob in paint["realism"].values():
        knob["enabled"] = False
    return paint


def _spreads(paint: dict[str, Any], seeds: range) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    return [
        paint_spread(np.random.default_rng(seed), SpreadSettings.from_config(paint))
        for seed in seeds
    ]


def test_table_matches_mask(config: dict[str, Any]) -> None:
    paint = config["chromosomes"]["paint"]
    for image, labels, table in _spreads(paint, range(3)):
        assert image.shape == (3, *paint["size"]) and image.dtype == np.uint8
        assert labels.dtype == np.int32
        ids = np.unique(labels[labels > 0])
        assert np.array_equal(ids, table["instance"].to_numpy())
        assert np.array_equal(ids, np.arange(1, len(table) + 1))
        area = np.bincount(labels.ravel(), minlength=len(table) + 1)[1:]
        assert np.array_equal(area, table["area"].to_numpy())
        assert (table["area"] > 0).all()
        for row in table.itertuples():  # the centre lies on (or next to) its own rod
            y, x = round(row.centre_y), round(row.centre_x)
            near = labels[y - 2 : y + 3, x - 2 : x + 3]
            assert (near == row.instance).any() or row.touching
    # every row's lengths add up and the rod's pixels are about length x width
    full = table["length"] * table["width"]
    assert np.median(table["area"] / full) == pytest.approx(0.8, abs=0.15)


def test_crossings_belong_to_neither_mask_unless_asked(spread_paint: dict[str, Any]) -> None:
    spread_paint["crossing"] = 0.6
    spread_paint["touching"] = 0.0
    neither = paint_spread(np.random.default_rng(3), SpreadSettings.from_config(spread_paint))
    spread_paint["crossing_mask"] = "top"
    top = paint_spread(np.random.default_rng(3), SpreadSettings.from_config(spread_paint))
    assert np.array_equal(neither[0], top[0]), "the knob changes masks, not pixels"
    left_out = (top[1] > 0) & (neither[1] == 0)
    assert left_out.sum() > 50, "crossings were painted"
    assert np.array_equal(neither[1][~left_out], top[1][~left_out])
    # the left-out pixels are bright chromosome pixels (two rods' DAPI), not background
    dapi = neither[0][DAPI]
    assert np.median(dapi[left_out]) > np.median(dapi[neither[1] > 0])
    # a rod crossed in its middle falls into pieces: more truth pieces than chromosomes
    pieces = Metaphase("s", "s.tif", dapi, {}, neither[1]).truth_pieces
    assert pieces.max() > len(neither[2])
    assert connected_pieces(top[1]).max() >= len(top[2])


def _crossings_at_both_middles(paint: dict[str, Any], seeds: range) -> float:
    """Share of crossings (pixels two rods cover) whose centre lies near the middles of two
    chromosomes (within a quarter of the median chromosome length)."""
    near = []
    for seed in seeds:
        _, neither, table = paint_spread(
            np.random.default_rng(seed), SpreadSettings.from_config(paint)
        )
        _, top, _ = paint_spread(
            np.random.default_rng(seed),
            SpreadSettings.from_config({**paint, "crossing_mask": "top"}),
        )
        overlap, count = ndimage.label((top > 0) & (neither == 0))
        middles = table[["centre_x", "centre_y"]].to_numpy()
        reach = 0.25 * table["length"].median()
        for y, x in ndimage.center_of_mass(overlap, overlap, range(1, count + 1)):
            near.append((np.hypot(*(middles - [x, y]).T) < reach).sum() >= 2)
    return float(np.mean(near))


def test_crossings_at_the_middle_cross_two_chromosomes_near_their_middles(
    spread_paint: dict[str, Any],
) -> None:
    spread_paint.update(crossing=0.6, touching=0.0)
    anywhere = _crossings_at_both_middles(spread_paint, range(3))
    spread_paint["crossing_at"] = "middle"
    middle = _crossings_at_both_middles(spread_paint, range(3))
    assert anywhere < 0.25 < 0.4 < middle


def test_kinks_fold_chromosomes_and_off_paints_the_same_bytes(
    spread_paint: dict[str, Any],
) -> None:
    spread_paint.update(touching=0.0, crossing=0.0, bend=[0, 0])
    straight = [
        spread_statistics(image[DAPI], labels)[0]
        for image, labels, _ in _spreads(spread_paint, range(2))
    ]
    folded_paint = {**spread_paint, "kink": 1.0, "kink_angle": [90, 90]}
    folded = [
        spread_statistics(image[DAPI], labels)[0]
        for image, labels, _ in _spreads(folded_paint, range(2))
    ]
    # arms meeting at 90 degrees: end to end = cos(45) of the axis where the fold is central
    assert min(v["straightness"] for v in straight) > 0.93
    assert max(v["straightness"] for v in folded) < 0.85
    assert min(v["folded"] for v in folded) > 0.3 > max(v["folded"] for v in straight)
    ((image, labels, _),) = _spreads(spread_paint, range(1))
    ((same_image, same_labels, _),) = _spreads(
        {**spread_paint, "kink": 0.0, "kink_angle": [10, 20]}, range(1)
    )
    assert np.array_equal(image, same_image) and np.array_equal(labels, same_labels)


def test_counts_and_sex_chromosomes(config: dict[str, Any]) -> None:
    paint = copy.deepcopy(config["chromosomes"]["paint"])
    paint["count"] = [43, 48]
    sexes = set()
    for _, _, table in _spreads(paint, range(8)):
        assert 43 <= len(table) <= 48
        numbers = table["chromosome"].value_counts()
        xx = numbers.get(23, 0) == 2 and numbers.get(24, 0) == 0
        xy = numbers.get(23, 0) == 1 and numbers.get(24, 0) == 1
        assert xx or xy
        sexes.add("XX" if xx else "XY")
        assert table["chromosome"].between(1, 24).all()
        assert (numbers.drop([23, 24], errors="ignore") <= 3).all()
    assert sexes == {"XX", "XY"}


def test_lengths_follow_chromosome_number(config: dict[str, Any]) -> None:
    paint = copy.deepcopy(config["chromosomes"]["paint"])
    paint["translocations"]["rate"] = 0
    _, _, table = _spreads(paint, range(1))[0]
    by_number = table.groupby("chromosome")["length"].mean()
    assert by_number[1] > by_number[12] > by_number[21]
    assert by_number[1] == pytest.approx(by_number.max())
    index = table["centromere"] / table["length"]
    acrocentric = table["chromosome"].isin([13, 14, 15, 21, 22])
    assert index[acrocentric].max() < 0.25 < index[table["chromosome"] == 1].min()


def _mean(image: np.ndarray, channel: int, mask: np.ndarray) -> float:
    return float(image[channel][mask].mean())


def test_colours_as_painted(spread_paint: dict[str, Any]) -> None:
    spread_paint["translocations"]["rate"] = 0
    spread_paint["crossing"] = 0.0  # crossings add paint of the rod below
    expected = {"red": (1, 0), "green": (0, 1), "yellow": (1, 1), "none": (0, 0)}
    painted = {2: "red", 4: "green", 12: "yellow"}
    for image, labels, table in _spreads(spread_paint, range(2)):
        for row in table.itertuples():
            assert row.paint == painted.get(row.chromosome, "none") == row.segments
            mask = labels == row.instance
            red, green = _mean(image, RED, mask), _mean(image, GREEN, mask)
            assert (red > 40, green > 40) == tuple(map(bool, expected[row.paint]))
            assert (red < 3, green < 3) == tuple(not v for v in map(bool, expected[row.paint]))
            assert _mean(image, DAPI, mask) > 20  # the dimmest chromosomes too


def test_aberrations_are_two_coloured(spread_paint: dict[str, Any]) -> None:
    spread_paint["translocations"]["rate"] = 3
    spread_paint["crossing"] = 0.0
    spread_paint["touching"] = 0.0
    spread_paint["bend"] = [0, 10]
    checked = 0
    for image, labels, table in _spreads(spread_paint, range(3)):
        aberrant = table[table["is_aberration"]]
        assert (aberrant.groupby("exchange").size() == 2).all(), "both derivatives appear"
        for exchange, pair in aberrant.groupby("exchange"):
            first, second = pair.itertuples()
            assert (first.chromosome, first.partner) == (second.partner, second.chromosome)
            assert exchange > 0
        assert (
            not table.loc[~table["is_aberration"], "segments"].str.contains("|", regex=False).any()
        )
        for row in aberrant.itertuples():
            colours = row.segments.split("|")
            assert len(colours) == 2
            assert row.visible_colour_change == (colours[0] != colours[1])
            # the centromere lies in the rod's own piece, the other piece is the partner's
            sources = [int(n) for n in row.segment_chromosomes.split("|")]
            first_length = float(row.segment_lengths.split("|")[0])
            own = 0 if row.centromere < first_length else 1
            assert (sources[own], sources[1 - own]) == (row.chromosome, row.partner)
            if not row.visible_colour_change:
                continue
            # project the rod's pixels on its axis; p end first
            ys, xs = np.nonzero(labels == row.instance)
            rad = np.radians(row.angle)
            along = (xs - row.centre_x) * np.cos(rad) + (ys - row.centre_y) * np.sin(rad)
            joint = -row.length / 2 + float(row.segment_lengths.split("|")[0])
            for side, colour in zip((along < joint - 3, along > joint + 3), colours, strict=True):
                if side.sum() < 5:
                    continue
                red = image[RED][ys[side], xs[side]].mean()
                green = image[GREEN][ys[side], xs[side]].mean()
                assert (red > 30) == (colour in ("red", "yellow"))
                assert (green > 30) == (colour in ("green", "yellow"))
                checked += 1
    assert checked >= 4


def _normal(number: int, length: float) -> Chromosome:
    centromere = float(CENTROMERE_INDEX[number - 1]) * length
    return Chromosome(number, [Piece(number, 0.0, 1.0, length)], centromere, 8.0)


def test_exchange_keeps_centromeres_and_tips() -> None:
    a, b = _normal(2, 100.0), _normal(7, 60.0)
    rng = np.random.default_rng(0)
    p_breaks = 0
    for _ in range(20):
        pair = _exchange(rng, a, b, [0.2, 0.9], 1)
        for der, own, other in zip(pair, (a, b), (b, a), strict=True):
            assert (der.number, der.partner, der.exchange) == (own.number, other.number, 1)
            assert [p.chromosome for p in der.pieces] in (
                [own.number, other.number],
                [other.number, own.number],
            )
            centric = next(p for p in der.pieces if p.chromosome == own.number)
            distal = next(p for p in der.pieces if p.chromosome == other.number)
            index = CENTROMERE_INDEX[own.number - 1]
            assert min(centric.start, centric.stop) < index < max(centric.start, centric.stop)
            if der.pieces[0] is centric:  # break in the q arm: the p end and centromere stay
                assert centric.start == 0.0 and distal.stop in (0.0, 1.0)
                assert der.centromere == pytest.approx(own.centromere)
            else:  # break in the p arm: the q end keeps its distance to the centromere
                p_breaks += 1
                assert centric.stop == 1.0 and distal.start in (0.0, 1.0)
                assert der.length - der.centromere == pytest.approx(own.length - own.centromere)
            assert distal.length == pytest.approx(abs(distal.stop - distal.start) * other.length)
    assert 0 < p_breaks < 30  # both arms get hit


def test_translocation_rate(config: dict[str, Any]) -> None:
    paint = copy.deepcopy(config["chromosomes"]["paint"])
    paint["translocations"]["rate"] = 0
    tables = [table for _, _, table in _spreads(paint, range(4))]
    assert not pd.concat(tables)[["is_aberration", "visible_colour_change"]].any().any()
    assert (pd.concat(tables)["partner"] == 0).all()
    paint["translocations"]["rate"] = 1
    tables = [table for _, _, table in _spreads(paint, range(4))]
    both = pd.concat(tables)
    assert both["visible_colour_change"].sum() >= 2
    assert (both.loc[both["is_aberration"], "partner"] > 0).all()
    # only unpainted partners: aberrations in truth, never a visible colour change
    paint["translocations"]["kinds"] = {
        "painted_unpainted": 0,
        "painted_painted": 0,
        "unpainted_unpainted": 1,
    }
    both = pd.concat([table for _, _, table in _spreads(paint, range(4))])
    assert both["is_aberration"].sum() >= 2
    assert not both["visible_colour_change"].any()
    assert (both.loc[both["is_aberration"], "segments"] == "none|none").all()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_files_reproducible_and_unannotated(config: dict[str, Any], tmp_path: Path) -> None:
    paint = config["chromosomes"]["paint"]
    runs = {}
    for name, seed, annotated in (("a", 5, True), ("b", 5, True), ("c", 6, True), ("u", 5, False)):
        table = paint_spreads(
            SpreadSettings.from_config(paint),
            "train",
            2,
            seed,
            tmp_path / name / "spreads",
            tmp_path / name / "sheet.tsv",
            tmp_path / name / "instances.parquet",
            annotated=annotated,
        )
        runs[name] = (table, _digest(tmp_path / name / "spreads"))
    assert runs["a"][1] == runs["b"][1]
    assert set(runs["a"][1]) == {f"train_00{i}{s}" for i in (0, 1) for s in (".tif", ".mask.tif")}
    assert runs["a"][1]["train_000.tif"] != runs["c"][1]["train_000.tif"]
    assert runs["a"][1]["train_000.tif"] != runs["a"][1]["train_001.tif"]
    pd.testing.assert_frame_equal(runs["a"][0], pd.read_parquet(tmp_path / "a/instances.parquet"))

    sheet = pd.read_csv(tmp_path / "a" / "sheet.tsv", sep="\t")
    assert list(sheet.columns) == ["sample", "image", "mask", "dapi", "red", "green"]
    row = sheet.iloc[1]
    image = tifffile.imread(tmp_path / "a" / row["image"])
    mask = tifffile.imread(tmp_path / "a" / row["mask"])
    assert image.shape == (3, *paint["size"]) and (row["dapi"], row["red"], row["green"]) == (
        0,
        1,
        2,
    )
    truth = runs["a"][0].query("spread == @row['sample']")
    assert np.array_equal(np.unique(mask[mask > 0]), truth["instance"].to_numpy())

    # withheld labels: same images, no masks, empty mask column, truth table still written
    assert set(runs["u"][1]) == {"train_000.tif", "train_001.tif"}
    assert runs["u"][1]["train_000.tif"] == runs["a"][1]["train_000.tif"]
    withheld = pd.read_csv(tmp_path / "u" / "sheet.tsv", sep="\t")
    assert withheld["mask"].isna().all()
    pd.testing.assert_frame_equal(runs["u"][0], runs["a"][0])


def _levels(paint: dict[str, Any], seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Median DAPI of every chromosome's pixels not shared with another rod, and the table."""
    image, labels, table = paint_spread(
        np.random.default_rng(seed), SpreadSettings.from_config(paint)
    )
    levels = [np.median(image[DAPI][labels == row.instance]) for row in table.itertuples()]
    return np.array(levels, float), table


def test_brightness_varies_between_chromosomes_as_asked(spread_paint: dict[str, Any]) -> None:
    spread_paint["translocations"]["rate"] = 0
    spread_paint["intensity"] = [0.4, 0.4]
    spread_paint["brightness"] = {"spread": [0.0, 0.0], "gradient": [0.0, 0.0]}
    alike, _ = _levels(spread_paint, 1)
    spread_paint["brightness"] = {"spread": [0.3, 0.3], "gradient": [0.0, 0.0]}
    varied, _ = _levels(spread_paint, 1)
    # banding and rod shape alone leave the log levels within a few percent of each other
    assert np.std(np.log(alike)) < 0.08
    assert np.std(np.log(varied)) == pytest.approx(0.3, abs=0.08)
    spread_paint["brightness"] = {"spread": [0.3, 0.3], "gradient": [1.0, 1.0]}
    ramp, table = _levels(spread_paint, 1)
    # all of the variance a linear ramp: position predicts the log level
    design = np.column_stack([np.ones(len(table)), table[["centre_x", "centre_y"]]])
    fit = np.linalg.lstsq(design, np.log(ramp), rcond=None)[0]
    residual = np.log(ramp) - design @ fit
    assert 1 - residual.var() / np.log(ramp).var() > 0.8


def test_bit_depth_16(config: dict[str, Any]) -> None:
    paint = copy.deepcopy(config["chromosomes"]["paint"])
    paint["bit_depth"] = 16
    image, _, _ = paint_spread(np.random.default_rng(0), SpreadSettings.from_config(paint))
    assert image.dtype == np.uint16 and image.max() > 255


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"width": [8, 60], "length": [45, 85]}, "chromosomes.paint.width"),
        ({"count": [47, 44]}, "chromosomes.paint.count"),
        ({"paints": {"red": [2], "green": [2], "yellow": []}}, "chromosomes.paint.paints"),
        ({"size": [64, 64]}, "chromosomes.paint.size"),
    ],
)
def test_bad_settings_name_the_key(
    config: dict[str, Any], change: dict[str, Any], key: str, tmp_path: Path
) -> None:
    paint = {**copy.deepcopy(config["chromosomes"]["paint"]), **change}
    with pytest.raises(InputError, match=rf"\[{key}\]"):
        paint_spreads(
            SpreadSettings.from_config(paint),
            "x",
            1,
            0,
            tmp_path,
            tmp_path / "s.tsv",
            tmp_path / "i.parquet",
        )
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_settings_from_the_schema_block_are_the_defaults(config: dict[str, Any]) -> None:
    block = copy.deepcopy(config["chromosomes"]["paint"])
    assert SpreadSettings.from_config(default("chromosomes.paint")) == SpreadSettings()
    assert SpreadSettings().brightness.spread == (0.08, 0.32)
    block["translocations"]["breakpont"] = block["translocations"].pop("breakpoint")
    with pytest.raises(InputError, match=r"\[translocations\]: missing key\(s\) \['breakpoint'\]"):
        SpreadSettings.from_config(block)
    with pytest.raises(InputError, match=r"\[chromosomes.paint.debris.sigma\]: range \[3, 1\]"):
        replace(SpreadSettings(), debris=replace(SpreadSettings().debris, sigma=(3.0, 1.0)))


def test_translocation_kinds_in_any_order_paint_the_same_spread() -> None:
    kinds = {"painted_unpainted": 0.6, "painted_painted": 0.3, "unpainted_unpainted": 0.1}
    settings = SpreadSettings()
    written = replace(settings, translocations=replace(settings.translocations, kinds=kinds))
    reordered = replace(
        settings,
        translocations=replace(settings.translocations, kinds=dict(reversed(kinds.items()))),
    )
    first = paint_spread(np.random.default_rng(2), written)
    second = paint_spread(np.random.default_rng(2), reordered)
    assert np.array_equal(first[0], second[0]) and first[2].equals(second[2])
