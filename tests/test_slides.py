"""Slide calls: sheet checks, border exclusion, crop geometry, per-sample fractions and the
verdict rule, bad input, and one sample end to end on constructed fields."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml

from fishline import models
from fishline.config import load_config
from fishline.errors import InputError
from fishline.images import read_file
from fishline.io import read_stack
from fishline.nets.fish import FishNet
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings, Probes
from fishline.schema import default, settings_as_config
from fishline.slides.cells import (
    CropIntensity,
    CropSettings,
    border_labels,
    crop_cells,
    crop_scale,
    nucleus_table,
    reference_diameter,
)
from fishline.slides.fields import Field, load_field
from fishline.slides.figures import BORDER_COLOUR, class_colour, gallery_rows, overlay_image
from fishline.slides.sheet import read_slide_sheet
from fishline.slides.stages import NoNucleiWarning, SlideSettings, call_sample
from fishline.slides.summary import summarise_set
from fishline.slides.training_sets import paint_crop_set
from fishline.slides.verdicts import CallRule, CallSettings, rule_text, summarise, verdict

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["normal", "gain", "amplification"]


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config(ROOT / "config" / "config.yaml")


@pytest.fixture
def calls(config: dict) -> CallSettings:
    return CallSettings.from_config(config["slides"]["calls"])


def _cells(sample: str, predicted: list[str], certainty: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample": sample,
            "field": "f1",
            "predicted_class": predicted,
            "certainty": certainty,
            "truth_class": "unknown",
        }
    )


# ---------------------------------------------------------------- fractions and verdict


def test_settings_from_the_config_blocks(config: dict) -> None:
    """The schema's blocks give the defaults; config key ``class`` is field ``class_``; a
    misspelled key names its place in the rule list."""
    assert CallSettings.from_config(default("slides.calls")) == CallSettings()
    assert SlideSettings.from_config(default("slides")) == SlideSettings()
    assert SlideSettings.from_config(config["slides"]).crops == CropSettings()
    rules = CallSettings().rules
    assert rules[0] == CallRule("amplification", 0.2, "MYCN amplified")
    assert settings_as_config(CallSettings()) == default("slides.calls")
    block = copy.deepcopy(default("slides"))
    block["calls"]["rules"][1]["min_fractoin"] = 0.3
    misspelled = r"\[calls\.rules\[1\]\].*unknown key\(s\) \['min_fractoin'\]"
    with pytest.raises(InputError, match=misspelled):
        SlideSettings.from_config(block)
    block["calls"]["rules"] = "amplification"
    with pytest.raises(InputError, match=r"\[calls\.rules\]: expected a list"):
        SlideSettings.from_config(block)


def test_fractions_count_only_certain_cells(calls: CallSettings) -> None:
    # 10 cells: 4 certain amplification, 4 certain normal, 2 uncertain gain.
    cells = _cells(
        "s1",
        ["amplification"] * 4 + ["normal"] * 4 + ["gain"] * 2,
        [0.9] * 8 + [0.2, 0.49],
    )
    row = summarise(cells, CLASSES, replace(calls, min_cells=5)).iloc[0]
    assert (row["cells"], row["certain"], row["uncertain"]) == (10, 8, 2)
    assert row["n_gain"] == 0  # the uncertain gain cells are set aside, not counted
    assert row["fraction_amplification"] == pytest.approx(0.5)
    assert row["fraction_normal"] == pytest.approx(0.5)
    assert row["verdict"] == "MYCN amplified"


def test_verdict_rule_order_threshold_and_too_few(calls: CallSettings) -> None:
    calls = replace(calls, min_cells=10)
    assert verdict({"amplification": 0.2, "gain": 0.5}, 50, calls) == "MYCN amplified"
    assert verdict({"amplification": 0.19, "gain": 0.5}, 50, calls) == "MYCN gain"
    assert verdict({"amplification": 0.1, "gain": 0.1}, 50, calls) == "MYCN not amplified"
    assert verdict({"amplification": 1.0}, 9, calls) == "too few certain cells"
    calls = replace(calls, rules=(CallRule("amplification", 0.05, "AMP"),))
    assert verdict({"amplification": 0.06}, 50, calls) == "AMP"


def test_summary_per_sample_and_accuracy(calls: CallSettings) -> None:
    calls = replace(calls, min_cells=1)
    first = _cells("a", ["normal", "normal", "gain"], [0.9, 0.8, 0.7])
    first["truth_class"] = ["normal", "gain", "unknown"]
    second = _cells("b", ["gain", "amplification"], [0.95, 0.1])
    table = summarise(pd.concat([first, second]), CLASSES, calls)
    assert list(table["sample"]) == ["a", "b"]
    a, b = table.iloc[0], table.iloc[1]
    assert a["fraction_normal"] == pytest.approx(2 / 3)
    assert a["verdict"] == "MYCN gain"  # gain 1/3 >= 0.2 (amplification 0)
    assert a["accuracy_matched"] == pytest.approx(0.5)  # 1 of the 2 cells with truth
    assert (b["certain"], b["uncertain"], b["fraction_gain"]) == (1, 1, 1.0)
    assert np.isnan(b["accuracy_matched"])


def test_rule_is_stated_with_its_numbers(calls: CallSettings) -> None:
    text = rule_text(calls)
    assert "certainty >= 0.5" in text
    assert "'MYCN amplified' if the amplification fraction >= 0.2" in text
    assert text.index("amplification fraction") < text.index("gain fraction")
    assert "else 'MYCN not amplified'" in text


# ---------------------------------------------------------------- nuclei and crops


def _disk(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def test_border_nuclei_are_flagged() -> None:
    labels = np.zeros((50, 60), np.int32)
    labels[_disk(labels.shape, (25, 25), 6)] = 1  # inside
    labels[_disk(labels.shape, (2, 20), 5)] = 2  # cut by the left border
    labels[_disk(labels.shape, (45, 48), 4)] = 3  # cut by the bottom border
    labels[_disk(labels.shape, (50, 12), 3)] = 7  # inside, sparse id
    assert border_labels(labels).tolist() == [2, 3]
    table = nucleus_table(labels)
    assert table["cell"].tolist() == [1, 2, 3, 7]
    assert table["border"].tolist() == [False, True, True, False]
    assert table.loc[0, "centre_x"] == pytest.approx(25)
    assert table.loc[0, "diameter"] == pytest.approx(2 * np.sqrt(labels[labels == 1].size / np.pi))


def test_crop_centres_and_scales_the_nucleus_to_the_training_size() -> None:
    shape = (200, 240)
    labels = np.zeros(shape, np.int32)
    labels[_disk(shape, (150.0, 60.0), 20)] = 1  # diameter ~40 px
    channels = np.full((3, *shape), 0.05, np.float32)
    channels[2][labels == 1] = 0.6  # DAPI
    channels[1][_disk(shape, (150.0, 60.0), 2)] = 1.0  # a green spot at the centre
    table = nucleus_table(labels)
    scale = crop_scale(float(table["diameter"][0]), "nucleus", 60.0, None)
    assert scale == pytest.approx(60.0 / table["diameter"][0])
    crops = crop_cells(channels, labels, table, 128, np.array([scale]), "keep")
    assert crops.shape == (1, 3, 128, 128)
    green = crops[0, 1]
    peak = np.unravel_index(np.argmax(green), green.shape)
    assert abs(peak[0] - 64) <= 2 and abs(peak[1] - 64) <= 2
    width = (crops[0, 2, 64] > 0.3).sum()  # DAPI row through the centre
    assert abs(width - 60) <= 3
    assert crops[0, 2, 0, 0] == pytest.approx(0.05, abs=1e-3)  # background kept
    zeroed = crop_cells(channels, labels, table, 128, np.array([scale]), "zero")
    assert zeroed[0, 2, 0, 0] == 0 and zeroed[0, 2, 64, 64] == pytest.approx(0.6, abs=0.01)


def test_crop_beyond_the_field_is_filled_with_background() -> None:
    shape = (100, 100)
    labels = np.zeros(shape, np.int32)
    labels[_disk(shape, (12, 50), 8)] = 1
    channels = np.full((3, *shape), 0.1, np.float32)
    channels[2][labels == 1] = 0.8
    crops = crop_cells(channels, labels, nucleus_table(labels), 64, np.array([1.0]), "keep")
    assert crops[0, 2, 32, 0] == pytest.approx(0.1, abs=1e-3)  # left of the field


def test_crop_set_cuts_painted_fields_as_slide_calling_does(tmp_path: Path, config: dict) -> None:
    block = copy.deepcopy(config["fish"]["paint"])
    block["splits"]["train"] = {"n": 40, "source": "fields", "stain": "fish"}
    paint = FishPaintSettings.from_config(block)
    fields = FieldSettings.from_config(config["fish"]["fields"])
    crops = CropSettings.from_config(config["slides"]["crops"])
    outputs = [tmp_path / "a.tif", tmp_path / "a.parquet"]
    frame = paint_crop_set(paint, fields, crops, "train", 5, *outputs)
    images, meta = read_stack(outputs[0])
    assert images.shape == (40, 3, paint.patch_size, paint.patch_size)
    assert images.dtype == np.uint16 and meta["bit_depth"] == 16
    assert frame["index"].tolist() == list(range(40))
    assert (frame["label"] == frame["class_name"].map(CLASSES.index)).all()
    # Field statuses cycle through the classes; the admixed nuclei are normal.
    status = frame["field"].map(lambda field: CLASSES[field % 3])
    assert ((frame["class_name"] == status) | (frame["class_name"] == "normal")).all()
    assert (frame.loc[frame["field"] == 0, "class_name"] == "normal").all()
    assert frame["field"].nunique() >= 2 and not frame["touches_border"].any()
    # Zoomed as slide calling zooms: every nucleus to the painter's typical diameter, centred.
    reference = reference_diameter(paint.nuclei)
    zoomed = 2 * np.sqrt(frame["visible_area"] / np.pi) * frame["crop_scale"]
    assert np.median(zoomed) == pytest.approx(reference, rel=0.05)
    dapi = images[:, 2].astype(np.float64)
    centre = paint.patch_size // 2
    assert (dapi[:, centre, centre] > np.median(dapi, axis=(1, 2))).mean() >= 0.9
    again = [tmp_path / "b.tif", tmp_path / "b.parquet"]
    paint_crop_set(paint, fields, crops, "train", 5, *again)
    assert np.array_equal(read_stack(again[0])[0], images)
    surface = replace(paint.splits["train"], stain="surface")
    paint = replace(paint, splits={**paint.splits, "train": surface})
    with pytest.raises(InputError, match="stain 'fish'"):
        paint_crop_set(paint, fields, crops, "train", 5, *again)


def test_reference_diameter_and_pixel_scale(config: dict) -> None:
    nuclei = config["fish"]["paint"]["nuclei"]
    assert reference_diameter(nuclei) == pytest.approx(57 * np.sqrt(0.85))
    assert crop_scale(30.0, "pixel_size", 57.0, 0.5) == 0.5
    with pytest.raises(InputError, match="pixel_size"):
        crop_scale(30.0, "pixel_size", 57.0, None)


# ---------------------------------------------------------------- sheets and bad input

INTENSITY = CropIntensity("bit_depth", (1, 99.9))
PROBES = Probes(target="green", reference="red")


def _sheet(folder: Path, rows: list[dict]) -> Path:
    path = folder / "slides.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_sheet_fields_default_and_duplicates(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    base = {"image": "a.tif", "dapi": 2, "target": 1, "reference": 0}
    frame = read_slide_sheet(_sheet(tmp_path, [{"sample": "s1", **base}]))
    assert frame["field"].tolist() == ["s1"]
    with pytest.raises(InputError, match="field 's1' of sample 's1' appears twice"):
        read_slide_sheet(_sheet(tmp_path, [{"sample": "s1", **base}, {"sample": "s1", **base}]))


@pytest.mark.parametrize("name", [".", "..", ".hidden", "-rf", "a/b"])
def test_sample_and_field_names_must_be_safe_file_names(tmp_path: Path, name: str) -> None:
    """Outputs go to results/.../{sample}/: a name like '..' would put them outside."""
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    base = {"image": "a.tif", "dapi": 2, "target": 1, "reference": 0}
    for row in ({"sample": name, **base}, {"sample": "s1", "field": name, **base}):
        with pytest.raises(InputError, match=r"slides.tsv \[row 2, (sample|field)\]") as error:
            read_slide_sheet(_sheet(tmp_path, [row]))
        assert f"'{name}' does not match" in str(error.value)


def test_channel_last_tiff_is_read_by_its_small_axis(tmp_path: Path) -> None:
    """A 100 x 120 x 2 TIFF (channel-last, not RGB) is 2 channels, not 100 images of 120 x 2;
    shapes with no clear channel axis are refused saying what to do."""
    image = np.random.default_rng(0).integers(0, 4000, (100, 120, 2), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "last.tif", image)
    read = read_file(tmp_path / "last.tif")
    assert read.shape == (2, 100, 120) and (read[1] == image[..., 1]).all()
    for name, shape in (("middle", (100, 2, 120)), ("stack", (30, 64, 64)), ("square", (3, 3, 9))):
        tifffile.imwrite(tmp_path / f"{name}.tif", np.zeros(shape, np.uint16))
        with pytest.raises(InputError, match=r"cannot tell which axis .* channel-first"):
            read_file(tmp_path / f"{name}.tif")


def test_grayscale_where_three_channels_are_expected(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "gray.tif", np.zeros((16, 16), np.uint16))
    sheet = _sheet(tmp_path, [{"sample": "s", "image": "gray.tif", "dapi": 2, "target": 1,
                               "reference": 0}])  # fmt: skip
    row = read_slide_sheet(sheet).iloc[0].to_dict()
    with pytest.raises(InputError, match="grayscale image") as error:
        load_field(row, sheet, INTENSITY, PROBES)
    assert "gray.tif" in str(error.value) and "dapi=2" in str(error.value)


def test_channel_index_out_of_range(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "two.tif", np.zeros((2, 16, 16), np.uint16))
    sheet = _sheet(tmp_path, [{"sample": "s", "image": "two.tif", "dapi": 0, "target": 1,
                               "reference": 2}])  # fmt: skip
    row = read_slide_sheet(sheet).iloc[0].to_dict()
    with pytest.raises(InputError, match=r"\[reference\]: channel 2 requested .* 2 channel") as e:
        load_field(row, sheet, INTENSITY, PROBES)
    assert "two.tif" in str(e.value)


def test_bit_depth_and_percentile_scaling(tmp_path: Path) -> None:
    image = np.zeros((2, 16, 16), np.uint16)
    image[0] = 4095
    image[1, :, 8:] = 1000
    tifffile.imwrite(tmp_path / "f.tif", image)
    sheet = _sheet(tmp_path, [{"sample": "s", "image": "f.tif", "dapi": 0, "target": 1,
                               "bit_depth": 12}])  # fmt: skip
    row = read_slide_sheet(sheet).iloc[0].to_dict()
    field = load_field(row, sheet, INTENSITY, PROBES)
    assert field.channels[2].max() == pytest.approx(1.0)  # DAPI full scale at 12 bit
    assert field.channels[1].max() == pytest.approx(1000 / 4095)  # green = target
    assert field.channels[0].max() == 0  # no reference column: empty red channel
    stretched = load_field(row, sheet, CropIntensity("percentile", (0, 100)), PROBES)
    assert stretched.channels[1].max() == pytest.approx(1.0)


# ---------------------------------------------------------------- one sample end to end


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An untrained Cellpose net and an untrained FISH classifier, as model files."""
    from cellpose.resnet_torch import CPnet

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    net = CPnet([2, 32, 64, 128, 256], 3, sz=3, mkldnn=False, diam_mean=24.0)
    meta = {"object_diameter": 24.0}
    models.save(folder / "nuclei.pt", net, "cellpose", {"diameter": 24.0}, ["nucleus"], meta)
    fish = FishNet(len(CLASSES))
    fish_meta = {"input_size": 32, "method": {"smoothing": 0.01}}
    spec = {"classes": 3, "in_channels": 3}
    models.save(folder / "fish.pt", fish, "fishnet", spec, CLASSES, fish_meta)
    return folder / "nuclei.pt", folder / "fish.pt"


def _outputs(folder: Path) -> dict[str, Path]:
    names = {"cells": "cells.parquet", "stack": "crops.tif", "table": "crops.parquet",
             "timing": "timing.json", "overlay": "overlay.png", "card": "card.html"}  # fmt: skip
    return {key: folder / name for key, name in names.items()}


def _field_with_nuclei(folder: Path) -> np.ndarray:
    shape = (160, 160)
    labels = np.zeros(shape, np.int32)
    for index, (x, y) in enumerate([(40, 40), (110, 50), (70, 115), (3, 90)], start=1):
        labels[_disk(shape, (x, y), 18)] = index  # the 4th is cut by the left border
    image = np.full((3, *shape), 10, np.uint8)
    image[2][labels > 0] = 150
    tifffile.imwrite(folder / "cells.tif", image, photometric="minisblack")
    tifffile.imwrite(folder / "cells.mask.tif", labels.astype(np.uint16))
    pd.DataFrame(
        {"label": [1, 2, 3, 4], "class_name": ["normal", "gain", "normal", "gain"]}
    ).to_csv(folder / "truth.tsv", sep="\t", index=False)
    return labels


def test_sample_end_to_end_and_bad_samples(
    tmp_path: Path, model_files: tuple[Path, Path], config: dict, monkeypatch
) -> None:
    """One good two-field sample (segmentation replaced by the truth labels, so crops and
    calls are checked exactly), one field with no nuclei, one corrupt TIFF."""
    import fishline.slides.stages

    nuclei_model, classifier = model_files
    labels = _field_with_nuclei(tmp_path)
    tifffile.imwrite(
        tmp_path / "empty.tif", np.full((3, 96, 96), 10, np.uint8), photometric="minisblack"
    )
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00not a tiff at all")
    pd.read_csv(tmp_path / "truth.tsv", sep="\t").to_parquet(tmp_path / "truth.parquet")
    base = {"dapi": 2, "target": 1, "reference": 0}
    sheet = _sheet(
        tmp_path,
        [
            {"sample": "good", "field": "f1", "image": "cells.tif", "mask": "cells.mask.tif",
             "cell_labels": "truth.tsv", **base},
            {"sample": "good", "field": "f2", "image": "empty.tif", **base},
            {"sample": "bad", "image": "corrupt.tif", **base},
        ],
    )  # fmt: skip
    settings = SlideSettings.from_config(config["slides"])
    settings = replace(settings, calls=replace(settings.calls, min_cells=1))
    paint = FishPaintSettings.from_config(config["fish"]["paint"])

    def fake_segment(model, dapi, segment, diameter):
        return labels.copy() if dapi.shape == labels.shape else np.zeros(dapi.shape, np.int32)

    monkeypatch.setattr(fishline.slides.stages, "segment_dapi", fake_segment)
    out = _outputs(tmp_path / "good")
    with pytest.warns(NoNucleiWarning, match="empty.tif.*no nuclei"):
        cells = call_sample(sheet, "good", nuclei_model, classifier, settings, paint, out)
    assert cells["cell"].tolist() == [1, 2, 3]  # the border nucleus is not called
    assert cells["field"].tolist() == ["f1"] * 3
    assert cells["truth_class"].tolist() == ["normal", "gain", "normal"]
    probabilities = cells[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert ((cells["certainty"] >= 0) & (cells["certainty"] <= 1)).all()
    assert cells["predicted_class"].isin(CLASSES).all()
    saved = pd.read_parquet(out["cells"])
    assert len(saved) == 3
    stack = tifffile.imread(out["stack"])
    assert stack.shape[0] == 3 and stack.shape[-1] == paint.patch_size
    timing = yaml.safe_load(out["timing"].read_text())
    assert timing["segmentation"]["ap@0.5"] == 1.0  # the truth itself: 4 of 4 matched
    assert "MYCN" in out["card"].read_text() or "too few" in out["card"].read_text()
    assert out["overlay"].stat().st_size > 1000

    again = _outputs(tmp_path / "again")  # same inputs -> the same bytes
    with pytest.warns(NoNucleiWarning):
        call_sample(sheet, "good", nuclei_model, classifier, settings, paint, again)
    for key in ("cells", "stack", "table", "card"):
        assert again[key].read_bytes() == out[key].read_bytes(), key

    bad = _outputs(tmp_path / "bad")
    with pytest.raises(InputError, match=r"corrupt\.tif.*cannot read image"):
        call_sample(sheet, "bad", nuclei_model, classifier, settings, paint, bad)
    assert not any(path.exists() for path in bad.values())  # nothing half-written

    # An empty sample only (its one field has no nuclei): valid empty outputs.
    empty_sheet = _sheet(tmp_path, [{"sample": "none", "image": "empty.tif", **base}])
    none = _outputs(tmp_path / "none")
    with pytest.warns(NoNucleiWarning):
        empty = call_sample(empty_sheet, "none", nuclei_model, classifier, settings, paint, none)
    assert len(empty) == 0 and len(pd.read_parquet(none["cells"])) == 0
    assert tifffile.imread(none["stack"]).shape[0] == 0

    set_out = {k: tmp_path / f"set.{k}" for k in ("cells", "summary", "html", "gallery")}
    summary = summarise_set(
        [out["cells"], none["cells"]], [out["timing"], none["timing"]],
        [out["stack"], none["stack"]], CLASSES, settings.calls, 4, set_out, "demo",
    )  # fmt: skip
    assert summary["sample"].tolist() == ["good", "none"]
    assert summary["cells"].tolist() == [3, 0]
    assert summary.loc[1, "verdict"] == "too few certain cells"
    assert summary.loc[0, "segmentation_ap@0.5"] == 1.0
    assert "Rule." in set_out["html"].read_text()
    assert len(pd.read_parquet(set_out["cells"])) == 3


def test_missing_probe_channel_is_flagged_on_the_card(
    tmp_path: Path, model_files: tuple[Path, Path], config: dict, monkeypatch
) -> None:
    """A sheet without a reference probe (as speckles-dev): the sample is called, and its card
    says the classifier saw an empty channel it was never trained on."""
    import fishline.slides.stages

    nuclei_model, classifier = model_files
    labels = _field_with_nuclei(tmp_path)
    sheet = _sheet(tmp_path, [{"sample": "s", "image": "cells.tif", "dapi": 2, "target": 1}])
    monkeypatch.setattr(fishline.slides.stages, "segment_dapi", lambda *args: labels.copy())
    settings = SlideSettings.from_config(config["slides"])
    out = _outputs(tmp_path / "s")
    cells = call_sample(sheet, "s", nuclei_model, classifier, settings, FishPaintSettings(), out)
    assert len(cells) == 3
    card = out["card"].read_text()
    assert "Caution." in card and "No reference probe channel" in card
    complete = _sheet(tmp_path, [{"sample": "t", "image": "cells.tif", "dapi": 2, "target": 1,
                                  "reference": 0}])  # fmt: skip
    out = _outputs(tmp_path / "t")
    call_sample(complete, "t", nuclei_model, classifier, settings, FishPaintSettings(), out)
    assert "Caution." not in out["card"].read_text()


def test_speckles_config_overrides_one_set_only() -> None:
    overrides = yaml.safe_load((ROOT / "config" / "speckles_dev.yaml").read_text())
    merged = load_config(ROOT / "config" / "config.yaml", overrides=overrides)
    entry = merged["slides"]["real"]["speckles"]
    assert entry["crops"] == {"intensity": {"mode": "percentile"}}  # partial, no defaults
    assert merged["slides"]["crops"]["intensity"]["mode"] == "bit_depth"  # painted unchanged
    bad = {"slides": {"real": {"x": {"sheet": "s.tsv", "segment": {"diameter": 3}}}}}
    with pytest.raises(InputError, match=r"slides\.real\.x"):
        load_config(ROOT / "config" / "config.yaml", overrides=bad)


def test_overlay_keeps_native_resolution_and_marks_uncertain_cells() -> None:
    """The field is drawn pixel for pixel (not shrunk), legend and title above it; a certain
    cell's outline is solid in its class colour, an uncertain one dashed in its class colour,
    a border cell thin grey."""
    height, width = 200, 300
    labels = np.zeros((height, width), np.int32)
    yy, xx = np.mgrid[:height, :width]
    for cell, (x, y) in enumerate([(60, 100), (160, 100), (290, 100)], start=1):
        labels[(xx - x) ** 2 + (yy - y) ** 2 < 30**2] = cell
    channels = np.zeros((3, height, width), np.float32)
    channels[2] = (labels > 0) * 0.5
    field = Field("s1", "f1", "f1.tif", channels, None, None)
    cells = pd.DataFrame(
        {"field": "f1", "cell": [1, 2], "prediction": [0, 2], "certainty": [0.95, 0.4]}
    )
    table = pd.DataFrame({"cell": [1, 2, 3], "border": [False, False, True]})
    image = overlay_image([(field, labels, table)], cells, ["normal", "gain", "amp"], 0.8)
    assert image.dtype == np.uint8 and image.shape[1] == 720 and image.shape[0] > height + 40
    drawn = image[-height:, :width].astype(int)  # the field is the last band, unscaled
    colours = [np.array(class_colour(i)) * 255 for i in (0, 2)]

    def coloured_share(cell: int, colour: np.ndarray) -> float:
        mask = (labels == cell).astype(np.uint8)
        edge = (mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).astype(bool)
        return float((np.abs(drawn[edge] - colour).max(axis=1) < 40).mean())

    assert coloured_share(1, colours[0]) > 0.9  # solid
    assert 0.2 < coloured_share(2, colours[1]) < 0.8  # dashed
    grey = np.array(BORDER_COLOUR) * 255
    assert coloured_share(3, grey) > 0.3 and coloured_share(3, colours[0]) < 0.05


def test_check_sheet_opens_every_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """check-sheet reads the files, not just their names: a truncated or empty TIFF, a
    channel the image lacks and a mask of another size are refused naming row and column."""
    from fishline.cli import main

    image = np.random.default_rng(0).integers(0, 255, (3, 64, 64), np.uint8)
    tifffile.imwrite(tmp_path / "good.tif", image, photometric="minisblack")
    tifffile.imwrite(tmp_path / "mask.tif", np.zeros((64, 64), np.uint16))
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((32, 64), np.uint16))
    data = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.tif").write_bytes(b"")
    header = "sample\timage\tdapi\ttarget\treference\tmask\n"
    sheet = tmp_path / "slides.tsv"

    def check(*rows: str) -> int:
        sheet.write_text(header + "".join(f"{row}\n" for row in rows))
        return main(["check-sheet", "slide_sheet", str(sheet)])

    assert check("a\tgood.tif\t2\t1\t0\tmask.tif") == 0
    assert "1 rows, 2 image files opened" in capsys.readouterr().out
    for row, expected in (
        ("b\tcut.tif\t2\t1\t0\t", "[row 3, image]"),
        ("b\tempty.tif\t2\t1\t0\t", "[row 3, image]"),
        ("b\tgood.tif\t3\t1\t0\t", "[row 3, dapi]: channel 3 requested"),
        ("b\tgood.tif\t2\t1\t0\tsmall.tif", "[row 3, mask]"),
    ):
        assert check("a\tgood.tif\t2\t1\t0\tmask.tif", row) == 1
        error = capsys.readouterr().err
        assert str(sheet) in error and expected in error, error


def test_gallery_rows_show_most_then_least_certain_cells_per_class() -> None:
    cells = pd.DataFrame(
        {
            "sample": ["s"] * 6,
            "index": range(6),
            "predicted_class": ["gain", "normal", "gain", "gain", "normal", "gain"],
            "certainty": [0.9, 0.5, 0.2, 0.7, np.nan, 0.4],
        }
    )
    rows = gallery_rows(cells, CLASSES, 2)
    # no cell was called amplification; the uncalled (NaN) cell is in no row
    assert [label for label, _ in rows] == [
        "normal: most certain",
        "normal: least certain",
        "gain: most certain",
        "gain: least certain",
    ]
    assert [frame["index"].tolist() for _, frame in rows] == [[1], [1], [0, 3], [2, 5]]
