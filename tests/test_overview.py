"""The report's headline figure: one panel per track that ran, drawn from its tables."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fishline.overview import _fish_panel, _generation_panel, _slides_panel, headline_figure


def _tables(folder: Path) -> dict:
    fish = folder / "summary.tsv"
    pd.DataFrame(
        {
            "model": ["joint", "spots"],
            "test_set": ["shifted", "shifted"],
            "accuracy": [0.8, 0.7],
            "accuracy_at_50": [0.95, np.nan],
        }
    ).to_csv(fish, sep="\t", index=False)
    segmentation = {}
    for name, f1 in (("test", 0.9), ("mfish", 0.7)):
        segmentation[name] = folder / f"{name}.metrics.json"
        segmentation[name].write_text(json.dumps({"f1@0.5": f1, "baseline_f1@0.5": 0.5}))
    slides = folder / "slides.tsv"
    pd.DataFrame(
        {
            "sample": ["p1", "p2"],
            "cells": [10, 4],
            "uncertain": [2, 4],
            "n_normal": [1, 0],
            "n_gain": [1, 0],
            "n_amplification": [6, 0],
            "verdict": ["MYCN amplified", "too few certain cells"],
        }
    ).to_csv(slides, sep="\t", index=False)
    generation = folder / "compare.tsv"
    pd.DataFrame(
        {
            "training data": ["real", "real + BBDM"],
            "augmentation": [False, False],
            "f1 mean": [0.4, 0.5],
            "f1 std": [0.05, 0.1],
        }
    ).to_csv(generation, sep="\t", index=False)
    simsearch = {"pos": folder / "pos.json"}
    simsearch["pos"].write_text(json.dumps({"mean_auc": 0.8}))
    return {
        "fish_summary": fish,
        "segmentation": segmentation,
        "slides": {"lab": slides},
        "generation": generation,
        "simsearch": simsearch,
    }


def test_one_panel_per_track_that_ran(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    titles = headline_figure(tmp_path / "all.png", **tables)
    assert [title.split(":")[0] for title in titles] == [
        "FISH classifier",
        "Chromosome segmentation",
        "MYCN slides",
        "Chromosome classifiers",
        "SimSearch",
    ]
    width, height = Image.open(tmp_path / "all.png").size
    assert width > height > 600  # two rows of three panels at 150 dpi
    fewer = headline_figure(tmp_path / "two.png", tables["fish_summary"], slides=tables["slides"])
    assert [title.split(":")[0] for title in fewer] == ["FISH classifier", "MYCN slides"]
    with pytest.raises(ValueError, match="at least one track"):
        headline_figure(tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_panels_draw_the_tables_numbers(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    figure, (fish, slides, generation) = plt.subplots(1, 3)
    _fish_panel(fish, tables["fish_summary"])
    # all-cell accuracy per row, then the 50 % most certain (none for spot counting)
    assert [bar.get_height() for bar in fish.patches] == pytest.approx([0.8, 0.7, 0.95, 0.0])
    _slides_panel(slides, tables["slides"])
    widths = [bar.get_width() for bar in slides.patches]
    # per class then uncertain, two samples each: shares of the sample's cells
    assert widths == pytest.approx([0.1, 0, 0.1, 0, 0.6, 0, 0.2, 1.0])
    assert "MYCN amplified (10 cells)" in [text.get_text() for text in slides.texts]
    _generation_panel(generation, tables["generation"])
    assert [bar.get_width() for bar in generation.patches] == pytest.approx([0.4, 0.5])
    assert [tick.get_text() for tick in generation.get_yticklabels()] == [
        "real, plain",
        "real + BBDM, plain",
    ]
    plt.close(figure)
