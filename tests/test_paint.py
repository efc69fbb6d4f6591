"""FISH painter: labels agree with pixels, reproducibility, realism knobs, bad input."""

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
from conftest import realism_off
from scipy import ndimage
from skimage.measure import label

from fishline.errors import InputError
from fishline.instances import estimate_nucleus_diameter, object_diameter, threshold_components
from fishline.io import read_patch_set, read_stack
from fishline.paint import FishPaintSettings, paint_fields, paint_patch_set, render_patches
from fishline.paint.fields import FieldSettings
from fishline.paint.fish import CHANNELS, _eroded, assign_conditions
from fishline.paint.fish_settings import Condition, Probes
from fishline.sheets import read_sample_sheet
from fishline.slides.cells import CropSettings
from fishline.slides.training_sets import paint_crop_set

RED, GREEN, DAPI = 0, 1, 2


def _well_separated(xs: list[float], ys: list[float], distance: float) -> bool:
    points = np.stack([xs, ys], axis=1)
    gaps = np.hypot(*(points[:, None] - points[None, :]).transpose(2, 0, 1))
    return bool((gaps[np.triu_indices(len(points), 1)] >= distance).all())


def _components(plane: np.ndarray) -> int:
    return int(label(plane > 0.05).max())


def _amplified(settings: FishPaintSettings, **keys: Any) -> FishPaintSettings:
    """Settings with one amplification condition: no spots or clusters, only ``keys``."""
    values = {"target_spots": 0, "reference_spots": 0, "cluster_size": (6, 12), **keys}
    return replace(settings, conditions=(Condition("amp", "amplification", **values),))


@pytest.mark.parametrize("target", ["green", "red"])
def test_spot_components_match_drawn_counts(clean_settings: FishPaintSettings, target: str) -> None:
    other = "red" if target == "green" else "green"
    settings = replace(clean_settings, probes=Probes(target=target, reference=other))
    cond = np.repeat([0, 1], 60)  # normal and gain: single spots, no clusters
    images, masks, record = render_patches(np.random.default_rng(7), settings, cond)
    target_channel = CHANNELS.index(target)
    reference_channel = 1 - target_channel
    checked = 0
    for i in range(len(cond)):
        xs, ys = record["target_x"][i], record["target_y"][i]
        rxs, rys = record["reference_x"][i], record["reference_y"][i]
        if not (_well_separated(xs, ys, 12) and _well_separated(rxs, rys, 12)):
            continue
        checked += 1
        assert _components(images[i, target_channel]) == record["target_spots"][i] == len(xs)
        assert _components(images[i, reference_channel]) == record["reference_spots"][i] == 2
        inside = masks[i][np.rint(ys).astype(int), np.rint(xs).astype(int)]
        assert inside.all(), "spot centres lie inside the nucleus mask"
    assert checked >= 40


def test_clusters_are_one_blob_each(clean_settings: FishPaintSettings) -> None:
    settings = _amplified(clean_settings, target_clusters=1, cluster_size=(8, 16))
    images, _, record = render_patches(np.random.default_rng(3), settings, np.zeros(40, int))
    blobs = [_components(images[i, GREEN]) for i in range(40)]
    assert all(size[0] >= 8 for size in record["target_cluster_sizes"])
    assert np.mean(np.asarray(blobs) == 1) >= 0.9  # a walk rarely folds into two pieces
    # overlapping copies add up above a single spot's peak, so exposure had to scale down
    assert (record["exposure"] < 1).all()


def test_nucleus_too_small_for_its_signals_is_capped(clean_settings: FishPaintSettings) -> None:
    """Elongated nuclei from valid ranges can be drawn too small for a condition's signals:
    the target spots are cut to the room the nucleus has (reference spots kept), the record
    holds the counts painted, and the run does not fail."""
    settings = _amplified(clean_settings, target_spots=20, reference_spots=2)
    nuclei = {**settings.nuclei, "diameter": [36, 36], "aspect": [0.5, 0.5]}
    settings = replace(settings, nuclei=nuclei)
    images, masks, record = render_patches(np.random.default_rng(2), settings, np.zeros(6, int))
    allowed = _eroded(masks, 4)  # margin: 2 x the largest spot sigma (2 px)
    room = np.floor(allowed.sum(axis=(1, 2)) / (np.pi * 2.0**2)).astype(int)
    assert (room < 22).all()  # none could hold 20 + 2
    assert list(record["reference_spots"]) == [2] * 6
    assert list(record["target_spots"]) == list(room - 2)
    assert [len(xs) for xs in record["target_x"]] == list(room - 2)
    assert images.shape == (6, 3, 128, 128) and np.isfinite(images).all()


def test_conditions_are_balanced_by_weight() -> None:
    cond = assign_conditions(np.random.default_rng(0), FishPaintSettings().conditions, 1000)
    counts = np.bincount(cond, minlength=6)
    exact = 1000 * np.array([1, 1, 0.25, 0.25, 0.25, 0.25]) / 3  # 333.3 and 83.3
    assert counts.sum() == 1000 and (np.abs(counts - exact) < 1).all()


def test_patch_set_contract(paint: FishPaintSettings, tmp_path: Path) -> None:
    frame = paint_patch_set(paint, "train", 5, tmp_path / "t.tif", tmp_path / "t.parquet")
    images, table = read_patch_set(tmp_path / "t.tif", tmp_path / "t.parquet")
    _, meta = read_stack(tmp_path / "t.tif")
    assert images.shape == (24, 3, 128, 128) and images.dtype == np.uint8
    assert meta["channel_names"] == ["red", "green", "dapi"]
    scalar = [c for c in frame.columns if not isinstance(frame[c].iloc[0], list)]
    pd.testing.assert_frame_equal(table[scalar], frame[scalar])
    assert sorted(table["class_name"].unique()) == ["amplification", "gain", "normal"]
    expected = table["class_name"].map({"normal": 0, "gain": 1, "amplification": 2})
    assert (table["label"] == expected).all()
    normal = table[table["condition"] == "normal"]
    assert (normal["target_spots"] == 2).all() and (normal["target_clusters"] == 0).all()
    amp = table[table["condition"] == "amp_clusters"]
    assert amp["target_clusters"].between(1, 2).all()
    assert (table["target_x"].map(len) == table["target_spots"]).all()
    assert not list(tmp_path.glob(".*partial"))


def _digest(*paths: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


def test_same_seed_same_bytes_whatever_the_threads(
    paint: FishPaintSettings, tmp_path: Path
) -> None:
    one = (tmp_path / "a.tif", tmp_path / "a.parquet")
    two = (tmp_path / "b.tif", tmp_path / "b.parquet")
    other = (tmp_path / "c.tif", tmp_path / "c.parquet")
    paint_patch_set(paint, "shifted", 11, *one, threads=1)
    paint_patch_set(paint, "shifted", 11, *two, threads=2)
    paint_patch_set(paint, "shifted", 12, *other, threads=1)
    assert _digest(*one) == _digest(*two)
    assert _digest(*one) != _digest(*other)


@pytest.mark.parametrize(
    "knob",
    [
        "camera_noise",
        "background_offset",
        "haze",
        "debris",
        "neighbours",
        "dim_reference",
        "blur",
        "glow",
        "crosstalk",
        "illumination",
        "saturation",
    ],
)
def test_each_realism_knob_changes_output_and_switches_off(
    paint: FishPaintSettings, knob: str
) -> None:
    settings = realism_off(paint.for_split("train"))
    cond = np.arange(12) % 4

    def render(on: bool) -> np.ndarray:
        realism = {**settings.realism, knob: {**settings.realism[knob], "enabled": on}}
        chosen = replace(settings, realism=realism)
        return render_patches(np.random.default_rng(1), chosen, cond)[0]

    off = render(False)
    assert np.array_equal(off, render(False))
    changed = np.abs(render(True) - off).max()
    assert changed > 0.01, f"{knob} has no visible effect"


def test_saturation_clips_and_its_absence_does_not(clean_settings: FishPaintSettings) -> None:
    from fishline.paint.optics import quantise

    settings = clean_settings
    cond = np.full(16, 3)  # amplification by clusters: signals add above 1
    raw, _, _ = render_patches(np.random.default_rng(2), settings, cond)
    full = (quantise(raw, 8) == 255).sum(axis=(1, 2, 3))
    assert full.max() <= 2  # knob off: scaled so only the brightest pixel reaches full scale
    saturated = {"enabled": True, "exposure": [1.5, 1.5]}
    settings = replace(settings, realism={**settings.realism, "saturation": saturated})
    bright, _, _ = render_patches(np.random.default_rng(2), settings, cond)
    clipped = (quantise(bright, 8)[:, GREEN] == 255).sum(axis=(1, 2))
    assert np.median(clipped) >= 10  # clusters burn out into flat saturated blobs


@pytest.mark.parametrize(("depth", "dtype", "top"), [(12, np.uint16, 4095), (16, np.uint16, 65535)])
def test_bit_depth(
    paint: FishPaintSettings, tmp_path: Path, depth: int, dtype: type, top: int
) -> None:
    paint = replace(paint, bit_depth=depth)
    paint_patch_set(paint, "val", 1, tmp_path / "v.tif", tmp_path / "v.parquet")
    images, _ = read_stack(tmp_path / "v.tif")
    assert images.dtype == dtype
    assert top // 4 < images.max() <= top


def test_impossible_counts_fail_when_the_settings_are_made(config: dict[str, Any]) -> None:
    """More signals than the smallest nucleus holds: an error naming the condition, from the
    config block and from a library call alike, before anything is painted."""
    block = copy.deepcopy(config["fish"]["paint"])
    block["conditions"][1]["target_spots"] = [300, 400]
    with pytest.raises(InputError, match=r"conditions\[1\] 'gain'.*holds at most"):
        FishPaintSettings.from_config(block)
    gain = replace(FishPaintSettings().conditions[1], target_spots=(300, 400))
    with pytest.raises(InputError, match=r"conditions\[1\] 'gain'.*holds at most"):
        replace(FishPaintSettings(), conditions=(FishPaintSettings().conditions[0], gain))


def _library(folder: Path, mask_shape: tuple[int, int] = (40, 44)) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :44]
    mask = ((yy - 20) / 18) ** 2 + ((xx - 22) / 20) ** 2 < 1
    image = (mask * rng.uniform(500, 1500, mask.shape)).astype(np.uint16)
    tifffile.imwrite(folder / "n1.tif", image)
    tifffile.imwrite(
        folder / "n1_mask.tif",
        np.zeros(mask_shape, np.uint8) + 1 if mask_shape != mask.shape else mask.astype(np.uint8),
    )
    sheet = folder / "lib.tsv"
    sheet.write_text("id\timage\tmask\nn1\tn1.tif\tn1_mask.tif\n")
    return sheet


def test_library_nuclei(paint: FishPaintSettings, tmp_path: Path) -> None:
    library = {"source": "library", "library": str(_library(tmp_path))}
    paint = replace(paint, nuclei={**paint.nuclei, **library})
    frame = paint_patch_set(paint, "test", 2, tmp_path / "t.tif", tmp_path / "t.parquet")
    assert set(frame["nucleus_source"]) == {"n1"}
    # scale 0.75-1.5 of a ~38 x 42 px crop
    assert frame["nucleus_diameter"].between(25, 65).all()


def test_library_shape_mismatch_names_item(paint: FishPaintSettings, tmp_path: Path) -> None:
    library = {"source": "library", "library": str(_library(tmp_path, (30, 30)))}
    paint = replace(paint, nuclei={**paint.nuclei, **library})
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"n1_mask.tif \[n1\]: mask shape \(30, 30\) differs"):
        paint_patch_set(paint, "test", 2, out / "t.tif", out / "t.parquet")
    assert not out.exists() or list(out.iterdir()) == []


def test_library_unreadable_tiff_names_file(paint: FishPaintSettings, tmp_path: Path) -> None:
    sheet = _library(tmp_path)
    (tmp_path / "n1.tif").write_bytes(b"not a tiff")
    paint = replace(paint, nuclei={**paint.nuclei, "source": "library", "library": str(sheet)})
    with pytest.raises(InputError, match=r"n1.tif \[n1\]: cannot read TIFF"):
        paint_patch_set(paint, "test", 2, tmp_path / "t.tif", tmp_path / "t.parquet")
    assert not (tmp_path / "t.tif").exists()


def test_fields_masks_and_truth_agree(
    config: dict[str, Any], paint: FishPaintSettings, tmp_path: Path
) -> None:
    fields = {**config["fish"]["fields"], "n": 3, "size": 256, "nuclei": [5, 7], "purity": 1.0}
    nuclei = paint_fields(
        paint,
        FieldSettings.from_config(fields),
        3,
        tmp_path,
        tmp_path / "sheet.tsv",
        tmp_path / "nuclei.parquet",
    )
    sheet = read_sample_sheet(tmp_path / "sheet.tsv", "fields_sheet")
    assert sheet["status"].tolist() == ["normal", "gain", "amplification"]
    for row in sheet.itertuples():
        image = tifffile.imread(row.image)
        labels = tifffile.imread(row.mask)
        assert image.shape == (3, 256, 256) and labels.shape == (256, 256)
        truth = nuclei[nuclei["field"] == row.sample]
        assert set(np.unique(labels)) - {0} == set(truth["label"])
        assert (truth["class_name"] == row.status).all()  # purity 1
        areas = np.bincount(labels.ravel())[truth["label"]]
        assert (areas == truth["visible_area"].to_numpy()).all()
        assert image[DAPI][labels > 0].mean() > 2 * image[DAPI][labels == 0].mean()
    assert isinstance(nuclei, pd.DataFrame)


def _loose_fields(config: dict[str, Any], nuclei: int) -> dict[str, Any]:
    """Field settings of the default painter for ``nuclei`` nuclei on 384 px, no clumps."""
    return {
        **config["fish"]["fields"],
        "size": 384,
        "nuclei": [nuclei, nuclei],
        "clumps": {"count": [0, 0], "size": [5, 5]},
    }


def _one_field(paint: FishPaintSettings, fields: dict[str, Any], folder: Path) -> tuple:
    nuclei = paint_fields(
        paint,
        FieldSettings.from_config({**fields, "n": 1}),
        5,
        folder,
        folder / "s.tsv",
        folder / "n.pq",
    )
    return (
        tifffile.imread(folder / "field_000.tif"),
        tifffile.imread(folder / "field_000.mask.tif"),
        nuclei,
    )


def test_a_clump_is_painted_touching_and_the_size_estimate_sees_through_it(
    config: dict[str, Any], paint: FishPaintSettings, tmp_path: Path
) -> None:
    fields = {
        **config["fish"]["fields"],
        "size": 384,
        "nuclei": [12, 12],
        "clumping": 0.0,
        "clumps": {"count": [1, 1], "size": [12, 12]},
        "brightness": 0.0,
        "defocus": {"fraction": 0.0, "sigma": [0.05, 0.1]},
    }
    image, labels, _ = _one_field(paint, fields, tmp_path)
    # nuclei whose masks come within 2 px of each other are one clump: all 12 of them here
    near = label(ndimage.binary_dilation(labels > 0, iterations=2))
    largest = max(len(set(np.unique(labels[near == k])) - {0}) for k in range(1, near.max() + 1))
    assert largest >= 10
    truth = object_diameter(labels)
    assert object_diameter(threshold_components(image[DAPI])) > 1.5 * truth  # fooled
    assert estimate_nucleus_diameter(image[DAPI]) == pytest.approx(truth, rel=0.25)


def test_brightness_spread_and_defocus_knobs(
    config: dict[str, Any], paint: FishPaintSettings, tmp_path: Path
) -> None:
    base = _loose_fields(config, 14)
    plain = {**base, "brightness": 0.0, "defocus": {"fraction": 0.0, "sigma": [0.05, 0.1]}}
    varied = {**base, "brightness": 0.6, "defocus": {"fraction": 1.0, "sigma": [0.08, 0.12]}}
    measured = {}
    for name, fields in (("plain", plain), ("varied", varied)):
        image, labels, nuclei = _one_field(paint, fields, tmp_path / name)
        dapi = image[DAPI].astype(np.float32)
        levels = np.array([np.median(dapi[labels == k]) for k in nuclei["label"]])
        edge = (labels > 0) & ~ndimage.binary_erosion(labels > 0)
        gradient = np.hypot(*np.gradient(ndimage.gaussian_filter(dapi, 1.0)))
        measured[name] = (
            np.std(levels) / np.mean(levels),
            np.median(gradient[edge]) / np.median(levels),
            nuclei,
        )
    spread, sharpness, nuclei = measured["plain"]
    assert (nuclei["brightness"] == 1.0).all() and (nuclei["defocus_sigma"] == 0).all()
    varied_spread, varied_sharpness, varied_nuclei = measured["varied"]
    assert (varied_nuclei["defocus_sigma"] >= 0.08 * varied_nuclei["nucleus_diameter"] - 0.01).all()
    assert varied_spread > 2 * spread
    assert varied_sharpness < 0.7 * sharpness  # softer edges


def test_condensed_nuclei_are_smaller_and_brighter_and_can_be_switched_off(
    config: dict[str, Any], paint: FishPaintSettings, tmp_path: Path
) -> None:
    base = {
        **_loose_fields(config, 10),
        "brightness": 0.0,
        "defocus": {"fraction": 0.0, "sigma": [0.05, 0.1]},
    }
    knob = {"size": [0.6, 0.6], "brightness": [3.0, 3.0]}
    measured = {}
    for fraction in (0.0, 1.0):
        fields = {**base, "condensed": {**knob, "fraction": fraction}}
        image, labels, nuclei = _one_field(paint, fields, tmp_path / str(fraction))
        dapi = image[DAPI].astype(np.float32)
        level = np.median([np.median(dapi[labels == k]) for k in nuclei["label"]])
        measured[fraction] = (nuclei, level)
    plain, plain_level = measured[0.0]
    condensed, condensed_level = measured[1.0]
    assert not plain["condensed"].any() and condensed["condensed"].all()
    # the same nuclei are drawn; each is shrunk to 0.6 of its diameter, its mask with it
    assert np.median(condensed["full_area"]) / np.median(plain["full_area"]) == pytest.approx(
        0.36, rel=0.15
    )
    assert condensed["nucleus_diameter"].max() < 0.61 * plain["nucleus_diameter"].max()
    assert condensed_level > 1.8 * plain_level


def test_double_minutes_are_many_small_dots_inside_the_nucleus(
    clean_settings: FishPaintSettings,
) -> None:
    settings = _amplified(clean_settings, target_minutes=(40, 40))
    images, masks, record = render_patches(np.random.default_rng(4), settings, np.zeros(8, int))
    assert (record["target_minutes"] == 40).all()
    for image, mask in zip(images, masks, strict=True):
        green = image[GREEN]
        assert green[~ndimage.binary_dilation(mask, iterations=4)].max() < 0.01
        # many separate maxima (touching dots merge, so fewer than drawn), each one small
        peaks = (green == ndimage.maximum_filter(green, 3)) & (green > 0.1)
        assert peaks.sum() >= 15
        assert (green > 0.1).sum() / mask.sum() < 0.6


def test_signal_clouds_cover_part_of_the_nucleus_and_stop_at_its_edge(
    clean_settings: FishPaintSettings,
) -> None:
    settings = _amplified(clean_settings, target_clouds=1, cloud_size=(0.25, 0.25))
    images, masks, record = render_patches(np.random.default_rng(5), settings, np.zeros(8, int))
    assert (record["target_clouds"] == 1).all()
    for image, mask in zip(images, masks, strict=True):
        covered = (image[GREEN] > 0.1 * image[GREEN].max()) & mask
        assert 0.1 < covered.sum() / mask.sum() < 0.9
        assert image[GREEN][~mask].max() == 0.0


def test_presentations_off_draw_nothing(clean_settings: FishPaintSettings) -> None:
    """target_minutes and target_clouds at 0 (the default) draw nothing from the generator,
    so configs written before these keys existed paint the same images: the generator ends
    where it ends without them, and the record has no column for them."""
    plain = _amplified(clean_settings, target_spots=(8, 12))
    cond = np.zeros(6, int)
    rng = np.random.default_rng(6)
    first, _, record = render_patches(rng, plain, cond)
    assert "target_minutes" not in record and "target_clouds" not in record
    on = _amplified(clean_settings, target_spots=(8, 12), target_minutes=(20, 30))
    rng_on = np.random.default_rng(6)
    assert not np.array_equal(first, render_patches(rng_on, on, cond)[0])
    assert rng.bit_generator.state != rng_on.bit_generator.state


def test_field_settings_from_the_schema_block(config: dict[str, Any]) -> None:
    """The validated block gives the defaults; ``realism`` (no schema default) may be left
    out or given; a misspelled nested key is an error naming it."""
    block = config["fish"]["fields"]
    assert "realism" not in block
    assert FieldSettings.from_config(block) == FieldSettings()
    assert FieldSettings().clumps.size == (5, 10) and FieldSettings().realism is None
    haze = {"haze": {"enabled": False}}
    assert FieldSettings.from_config({**block, "realism": haze}).realism == haze
    with pytest.raises(InputError, match=r"\[condensed\]: missing key\(s\) \['fraction'\]"):
        FieldSettings.from_config(
            {**block, "condensed": {"fractoin": 0.1, "size": 1, "brightness": 2}}
        )


def test_fish_paint_settings_from_the_schema_block(config: dict[str, Any]) -> None:
    """The validated block gives the defaults (conditions and splits typed, a condition's
    size overrides left to the painter); a misspelled key in a condition or a split, or one
    colour for both probes, is an error naming it; a split's changes merge over the painter."""
    block = config["fish"]["paint"]
    settings = FishPaintSettings.from_config(block)
    assert settings == FishPaintSettings()
    gain = settings.conditions[1]
    assert (gain.name, gain.class_, gain.target_spots, gain.weight) == ("gain", "gain", (3, 7), 1)
    assert gain.spot_sigma is None and settings.of(gain, "spot_sigma") == (1.0, 2.0)
    assert settings.splits["ood"].stain == "surface" and settings.splits["train"].n == 1200
    shifted = settings.for_split("shifted")
    assert shifted.nuclei["diameter"] == [50, 80]
    assert shifted.nuclei["aspect"] == settings.nuclei["aspect"]  # not changed by the split
    assert shifted.realism["blur"] == {"enabled": True, "sigma": [0.8, 1.6]}
    assert settings.for_split("train") == settings
    bad = copy.deepcopy(block)
    bad["conditions"][2]["targt_spots"] = 3
    misspelled = r"\[conditions\[2\]\]: .*unknown key\(s\) \['targt_spots'\]"
    with pytest.raises(InputError, match=misspelled):
        FishPaintSettings.from_config(bad)
    bad = copy.deepcopy(block)
    bad["splits"]["val"]["stian"] = "fish"
    with pytest.raises(InputError, match=r"\[splits.val\]: .*unknown key\(s\) \['stian'\]"):
        FishPaintSettings.from_config(bad)
    with pytest.raises(InputError, match=r"\[fish.paint.probes\]: .*share a colour"):
        replace(settings, probes=Probes(target="red", reference="red"))
    with pytest.raises(InputError, match=r"unknown split 'tset'"):
        settings.for_split("tset")


def test_fields_need_a_condition_for_every_class(tmp_path: Path) -> None:
    """Field statuses cycle through the classes: a class no condition paints is an error
    naming the conditions, before anything is written, for whole fields and for crop sets
    cut from them alike."""
    paint = FishPaintSettings()
    paint = replace(paint, conditions=paint.conditions[:2])  # normal and gain only
    fields = replace(FieldSettings(), n=3, size=256, nuclei=(6, 9))
    with pytest.raises(InputError, match=r"no condition paints \['amplification'\]"):
        paint_fields(paint, fields, 0, tmp_path, tmp_path / "s.tsv", tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"no condition paints \['amplification'\]"):
        paint_crop_set(
            paint, fields, CropSettings(), "train", 0, tmp_path / "c.tif", tmp_path / "c.parquet"
        )
    assert list(tmp_path.iterdir()) == []
