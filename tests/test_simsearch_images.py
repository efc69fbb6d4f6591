"""SimSearch image sets and annotation files: scaling maths, roles, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fishline.errors import InputError
from fishline.io import write_image
from fishline.simsearch.annotations import check_annotations
from fishline.simsearch.images import load_image_set, rescale, set_scaling, split_names


def test_set_scaling_uses_percentiles_of_per_image_percentiles() -> None:
    # two 1-channel images with values 0..99 and 100..199: per-image (5, 95) percentiles are
    # (4.95, 94.05) and (104.95, 194.05); the set's (0.5, 99.5) percentiles of those four
    values = [np.arange(100, dtype=np.float32).reshape(1, 10, 10)]
    values.append(values[0] + 100)
    scaling = set_scaling(values)
    expected = np.percentile([4.95, 94.05, 104.95, 194.05], [0.5, 99.5])
    np.testing.assert_allclose(scaling[0], expected, rtol=1e-5)
    scaled = rescale(values[1], scaling)
    assert scaled.dtype == np.float32 and scaled.min() >= 0 and scaled.max() == 1.0


def test_split_names_roles_and_errors() -> None:
    names = [f"i{k}" for k in range(6)]
    assert split_names(names, 2, 2, "cfg") == {
        "displayed": ["i0", "i1"],
        "noisy": ["i2", "i3"],
        "test": ["i4", "i5"],
    }
    with pytest.raises(InputError, match=r"cfg \[test\]: names images not in the sheet"):
        split_names(names, ["i0"], ["i0"], "cfg")
    with pytest.raises(InputError, match=r"cfg \[displayed\]: asks for 7 images"):
        split_names(names, 7, 0, "cfg")


def _sheet(tmp_path: Path, rows: list[str]) -> Path:
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("image\tpath\tchannels\tpoints\n" + "\n".join(rows) + "\n")
    return sheet


def test_sheet_errors_name_file_image_and_problem(tmp_path: Path) -> None:
    write_image(tmp_path / "a.tif", np.zeros((2, 32, 32), np.uint16), ["dna", "gfp"])
    (tmp_path / "a.csv").write_text("x,y,class\n5,6,nuclear\n")
    (tmp_path / "bad.csv").write_text("x,y\n5,6\n")
    good = _sheet(tmp_path, ["a\ta.tif\tdna,gfp\ta.csv"])
    image_set = load_image_set(good, ["gfp"])
    assert image_set.channels == ["gfp"] and image_set.images["a"].shape == (1, 32, 32)
    assert image_set.truth["a"].to_dict("records") == [{"x": 5, "y": 6, "class": "nuclear"}]
    with pytest.raises(InputError, match=r"unknown channel\(s\) \['dapi'\]"):
        load_image_set(good, ["dapi"])
    three = _sheet(tmp_path, ["a\ta.tif\tdna,gfp,red\ta.csv"])
    with pytest.raises(InputError, match=r"sheet.tsv \[a\]: the file has 2 channel"):
        load_image_set(three)
    mixed = _sheet(tmp_path, ["a\ta.tif\tdna,gfp\ta.csv", "b\ta.tif\tgfp,dna\ta.csv"])
    with pytest.raises(InputError, match=r"sheet.tsv \[b\]: channels \['gfp', 'dna'\] differ"):
        load_image_set(mixed)
    no_class = _sheet(tmp_path, ["a\ta.tif\tdna,gfp\tbad.csv"])
    with pytest.raises(InputError, match=r"\[image a, points\]: .*lacks column\(s\) \['class'\]"):
        load_image_set(no_class)


def _annotations() -> dict:
    box = {"image": "a", "x": 10, "y": 10, "width": 32, "height": 32}
    return {
        "version": 1,
        "sheet": "s.tsv",
        "channels": ["dna", "gfp"],
        "displayed": ["a"],
        "patch": {"width": 32, "height": 32},
        "stride": 3.2,
        "classes": [
            {
                "name": "nuclear",
                "prototypes": [box],
                "threshold": 0.8,
                "positives": [{"image": "a", "x": 50, "y": 50}],
                "negatives": [],
            }
        ],
        "background": {"proposed": [], "not_background": []},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["displayed"].append("zz"), r"\[displayed\[1\]\]: unknown image 'zz'"),
        (
            lambda d: d["classes"][0]["prototypes"][0].update(x=80),
            r"\[classes\[0\].prototypes\[0\]\]: box x=80 y=10 32 x 32 is outside image 'a'",
        ),
        (
            lambda d: d["classes"][0]["positives"][0].update(y=100),
            r"\[classes\[0\].positives\[0\]\]: point \(50, 100\) is outside image 'a'",
        ),
        (lambda d: d["classes"][0].update(name="other"), r"unknown class 'other'"),
        (lambda d: d["classes"].append(dict(d["classes"][0])), r"\[classes\]: class names repeat"),
        (lambda d: d.pop("stride"), r"'stride' is a required property"),
    ],
)
def test_bad_annotations_name_the_entry(change, message: str) -> None:
    data = _annotations()
    assert check_annotations(data, "ann.json", {"a": (100, 100)}, ["nuclear"])["stride"] == 3.2
    change(data)
    with pytest.raises(InputError, match=message):
        check_annotations(data, "ann.json", {"a": (100, 100)}, ["nuclear"])


def test_check_sheet_compares_named_channels_with_the_file(tmp_path: Path) -> None:
    from fishline.sheets import check_sheet_images, read_sample_sheet

    write_image(tmp_path / "a.tif", np.zeros((2, 32, 32), np.uint8))
    sheet = tmp_path / "images.tsv"
    sheet.write_text("image\tpath\tchannels\na\ta.tif\tdna,gfp\n")
    assert (
        check_sheet_images(read_sample_sheet(sheet, "simsearch_sheet"), "simsearch_sheet", sheet)
        == 1
    )
    sheet.write_text("image\tpath\tchannels\na\ta.tif\tdna,gfp,rfp\n")
    with pytest.raises(InputError, match=r"\[row 2, channels\]: names 3 channels"):
        check_sheet_images(read_sample_sheet(sheet, "simsearch_sheet"), "simsearch_sheet", sheet)
