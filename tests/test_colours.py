"""M-FISH colour merging: which touching masks join, and the sheet column that feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from fishline.chromosomes.colours import colour_signatures, merge_by_colour, touching_pairs
from fishline.errors import InputError
from fishline.metaphase_sheet import load_row, read_sheet
from fishline.schema import default
from fishline.segment import SegmentSettings, colour_merged

CODES = {"a": (1, 0, 1, 0, 0), "b": (0, 1, 0, 1, 1), "none": (0, 0, 0, 0, 0)}


def spread() -> tuple[np.ndarray, np.ndarray]:
    """Labels of six bars in one row and their fluor channels: 1 and 2 are two touching pieces
    of one chromosome (code a), 3 touches 2 with code b, 4 and 5 touch but carry no fluor,
    6 has code a but lies 3 px from 5 (not touching)."""
    labels = np.zeros((20, 64), np.int32)
    spans = {1: (2, 10), 2: (11, 19), 3: (20, 28), 4: (31, 39), 5: (40, 48), 6: (51, 59)}
    codes = {1: "a", 2: "a", 3: "b", 4: "none", 5: "none", 6: "a"}
    colours = np.full((5, 20, 64), 10.0)
    rng = np.random.default_rng(0)
    for label, (start, stop) in spans.items():
        labels[5:15, start:stop] = label
        for channel, on in enumerate(CODES[codes[label]]):
            colours[channel, 5:15, start:stop] += 200 * on + rng.normal(0, 3, (10, stop - start))
    return labels, colours


def test_touching_means_at_most_two_px_apart_and_contact_counts_pixel_pairs() -> None:
    labels = np.zeros((5, 20), np.int32)
    labels[:, 0:5], labels[:, 6:10], labels[:, 13:16] = 1, 2, 3  # gaps of 1 and 3 px
    pairs, contact = touching_pairs(labels)
    # across a 1 px gap, 5 rows: column 4 meets column 6 in the same row (5 pairs), one row
    # down either way (4 + 4) and two rows down either way (3 + 3)
    assert pairs.tolist() == [[1, 2]] and contact.tolist() == [19]
    labels[:, 11] = 4
    pairs, contact = touching_pairs(labels)
    assert pairs.tolist() == [[1, 2], [2, 4], [3, 4]]
    labels[:] = 0
    labels[0, 0], labels[2, 2] = 1, 2  # two pixels, diagonally 2 px apart
    assert touching_pairs(labels)[1].tolist() == [1]


def test_signatures_put_background_at_zero_and_codes_apart() -> None:
    labels, colours = spread()
    signatures = colour_signatures(labels, colours)
    assert signatures.shape == (6, 5)
    assert np.allclose(signatures[3:5], 0, atol=0.05)  # no fluor: level with the background
    assert (signatures[0, [0, 2]] > 0.9).all() and (signatures[0, [1, 3, 4]] < 0.05).all()


def test_only_touching_pieces_of_one_code_merge() -> None:
    labels, colours = spread()
    merged = merge_by_colour(labels, colours, 0.01)
    assert merged.dtype == np.int32 and merged.max() == 5
    expected = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}  # new ids in order of the lowest old id
    for old, new in expected.items():
        assert set(np.unique(merged[labels == old])) == {new}
    assert (merged[labels == 0] == 0).all()
    # any two coloured touching masks merge when every direction counts as one code
    assert merge_by_colour(labels, colours, 2.0).max() == 4
    # pieces that border each other too little stay apart
    contact = touching_pairs(labels)[1][0]
    assert merge_by_colour(labels, colours, 0.01, contact).max() == 5
    assert merge_by_colour(labels, colours, 0.01, contact + 1).max() == 6


def test_merging_is_off_without_fluor_channels_or_at_zero() -> None:
    labels, colours = spread()
    settings = SegmentSettings.from_config(default("chromosomes.segment"))
    assert settings.colour_merge == 0.01
    assert colour_merged(labels, colours, settings, diameter=8.0).max() == 5
    # the contact needed grows with the object size (CONTACT_PER_DIAMETER per px)
    assert colour_merged(labels, colours, settings, diameter=40.0).max() == 6
    assert colour_merged(labels, None, settings, 8.0) is labels
    off = SegmentSettings.from_config({**default("chromosomes.segment"), "colour_merge": 0})
    assert colour_merged(labels, colours, off, 8.0) is labels
    assert SegmentSettings.of_track("slides").colour_merge is None


def test_sheet_colours_column_stacks_the_fluor_channels(tmp_path: Path) -> None:
    for index, name in enumerate(("d", "f1", "f2")):
        tifffile.imwrite(tmp_path / f"{name}.tif", np.full((8, 8), 10 * index, np.uint8))
    row = {"sample": "m", "image": "d.tif;f1.tif;f2.tif", "dapi": 0, "colours": "2,1"}
    sheet = tmp_path / "s.tsv"
    pd.DataFrame([row]).to_csv(sheet, sep="\t", index=False)
    item = load_row(read_sheet(sheet).iloc[0].to_dict(), sheet)
    assert item.colours.shape == (2, 8, 8) and item.colours[:, 0, 0].tolist() == [20, 10]
    pd.DataFrame([{**row, "colours": "1,3"}]).to_csv(sheet, sep="\t", index=False)
    with pytest.raises(InputError, match=r"\[colours\]: channel 3 requested but the image has 3"):
        load_row(read_sheet(sheet).iloc[0].to_dict(), sheet)
    pd.DataFrame([{**row, "colours": "1;2"}]).to_csv(sheet, sep="\t", index=False)
    with pytest.raises(InputError, match=r"row 2, colours"):
        read_sheet(sheet)
