"""Releasing a Cellpose model or a FISH classifier: half-precision weights, model card,
scores; fine-tuning from a fishline model file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from fishline import models as model_files
from fishline.errors import InputError
from fishline.fish.classifier import predict
from fishline.fish.release import CHECK_PATCHES, release_classifier, set_scores
from fishline.instances import object_diameter
from fishline.metaphase_sheet import iter_sheet
from fishline.model_card import (
    CHECK_IMAGES,
    NUCLEI,
    file_sha256,
    paint_check_fields,
    release_cellpose,
    stardist_sheet,
)
from fishline.paint import FishPaintSettings, paint_patch_set
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings
from fishline.segment import (
    CellposeTrainSettings,
    SegmentSettings,
    is_fishline_cellpose,
    load_cellpose,
    train_cellpose,
)


def small_paint(config: dict[str, Any]) -> dict[str, Any]:
    """The default painter on a small canvas with few, short chromosomes."""
    paint = {
        **config["chromosomes"]["paint"],
        "size": [128, 160],
        "count": [8, 10],
        "length": [22, 28],
        "width": [6, 8],
    }
    paint["nuclei"] = {**paint["nuclei"], "count": [0, 0]}
    return paint


def untrained_model(path: Path) -> Path:
    """A fishline Cellpose model file with random weights."""
    net = model_files.build("cellpose", {"diameter": 12.0})
    metadata = {"train_images": ["a"], "epochs": 0, "seconds": 0.0, "object_diameter": 12.0}
    model_files.save(path, net, "cellpose", {"diameter": 12.0}, ["chromosome"], metadata)
    return path


def test_release_writes_half_weights_with_their_card(tmp_path: Path, config: dict) -> None:
    paint = small_paint(config)
    sheet = tmp_path / "real/sheet.tsv"
    paint_spreads(
        SpreadSettings.from_config(paint),
        "real",
        1,
        3,
        tmp_path / "real",
        sheet,
        tmp_path / "real.parquet",
    )
    provenance = {
        "configfiles": "config/pretrain.yaml",
        "commit": "abc1234",
        "seed": 42,
        "settings": {"cellpose": {"epochs": 0}},
    }
    out = tmp_path / "release"
    settings = SegmentSettings.from_config(config["chromosomes"]["segment"])
    card = release_cellpose(
        untrained_model(tmp_path / "cp.pt"),
        {"mine": sheet},
        settings,
        provenance,
        out / "m.pt",
        out / "m.md",
        out / "scores.tsv",
    )
    saved = torch.load(out / "m.pt", weights_only=False)
    floats = [v for v in saved["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert saved["metadata"]["card"] == card and list(card["summary"]) == ["painted check", "mine"]
    assert card["summary"]["mine"]["images"] == 1 and card["check"]["images"] == CHECK_IMAGES
    text = (out / "m.md").read_text()
    assert file_sha256(out / "m.pt") in text and "make pretrain" in text and "abc1234" in text
    threshold = config["chromosomes"]["segment"]["cellprob_threshold"]
    assert f"`cellprob_threshold` {threshold}" in text and "`diameter_source` estimate" in text
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert len(scores) == CHECK_IMAGES + 1
    assert scores["truth"].gt(0).all() and scores["baseline_f1"].between(0, 1).all()
    assert (scores["ap"] <= scores["f1"]).all()  # AP = TP / (TP + FP + FN) never exceeds F1
    # the released file loads as a float32 network that runs
    model, info = load_cellpose(out / "m.pt", torch.device("cpu"))
    assert next(model.net.parameters()).dtype == torch.float32
    assert info["metadata"]["object_diameter"] == 12.0
    # the model's F1 before the M-FISH colour merge is a column only where the merge is on
    assert settings.colour_merge and "dapi_only_f1" in card["summary"]["mine"]
    assert "| dapi_only_f1 |" in text
    off = release_cellpose(
        untrained_model(tmp_path / "cp.pt"),
        {"mine": sheet},
        replace(settings, colour_merge=None),
        provenance,
        out / "off.pt",
        out / "off.md",
        out / "off.tsv",
    )
    assert "dapi_only_f1" not in off["summary"]["mine"]
    assert "dapi_only" not in (out / "off.md").read_text()
    assert "colour_merge" not in (out / "off.md").read_text()


def test_fine_tuning_starts_from_a_fishline_model_file(tmp_path: Path, config: dict) -> None:
    settings = SpreadSettings.from_config(small_paint(config))
    sheet = tmp_path / "train/sheet.tsv"
    paint_spreads(settings, "train", 2, 4, tmp_path / "train", sheet, tmp_path / "t.parquet")
    start = untrained_model(tmp_path / "start.pt")
    # a different diameter in the settings: fine-tuning keeps the start model's own
    settings = replace(
        CellposeTrainSettings.from_config(config["chromosomes"]["cellpose"]),
        pretrained=str(start),
        diameter=30.0,
        epochs=1,
        batch_size=2,
        images_per_epoch=2,
        tile=64,
    )
    assert is_fishline_cellpose(start) and not is_fishline_cellpose(sheet)
    train_cellpose(
        sheet, None, settings, 0, 1, "cpu", tmp_path / "tuned.pt", tmp_path / "h.parquet"
    )
    tuned = torch.load(tmp_path / "tuned.pt", weights_only=False)
    assert tuned["metadata"]["pretrained"] == str(start)
    assert tuned["spec"]["diameter"] == pytest.approx(12.0)
    before = torch.load(start, weights_only=False)["state_dict"]
    changed = [k for k, v in tuned["state_dict"].items() if not torch.equal(v, before[k])]
    assert changed  # the epoch moved the weights


def test_fine_tuning_curve_scores_the_spreads_left_out(tmp_path: Path, config: dict) -> None:
    from fishline.chromosomes.finetune import draw_subsets, finetune_curve

    plan = draw_subsets(["a", "b", "c", "d"], [0, 1, 2], 2, 7)
    assert [(k, draw) for k, draw, _ in plan] == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert all(len(chosen) == k for k, _, chosen in plan)
    assert plan == draw_subsets(["a", "b", "c", "d"], [0, 1, 2], 2, 7)  # seeded
    with pytest.raises(InputError, match="K = 4 leaves no spread"):
        draw_subsets(["a", "b", "c", "d"], [4], 1, 7)

    sheet = tmp_path / "real/sheet.tsv"
    paint_spreads(
        SpreadSettings.from_config(small_paint(config)),
        "real",
        3,
        5,
        tmp_path / "real",
        sheet,
        tmp_path / "r.pq",
    )
    curve = {"ks": [0, 1], "draws": 1, "epochs": 1, "images_per_epoch": 2, "learning_rate": 5e-4}
    cellpose = CellposeTrainSettings.from_config(
        {**config["chromosomes"]["cellpose"], "batch_size": 2, "tile": 64}
    )
    table = finetune_curve(
        untrained_model(tmp_path / "start.pt"),
        sheet,
        curve,
        cellpose,
        SegmentSettings.from_config(config["chromosomes"]["segment"]),
        seed=1,
        threads=1,
        device="cpu",
        table_out=tmp_path / "curve.tsv",
        figure_out=tmp_path / "curve.png",
    )
    assert list(table["k"]) == [0, 1] and list(table["scored"]) == [3, 2]
    assert table.loc[1, "train"] in {"real_000", "real_001", "real_002"}
    assert table["f1"].between(0, 1).all() and (tmp_path / "curve.png").stat().st_size > 0
    # K = 0 is the start model itself; each draw also scores it on its own held-out spreads
    assert table.loc[0, "start_f1"] == table.loc[0, "f1"]
    assert table["start_f1"].between(0, 1).all()
    assert pd.read_csv(tmp_path / "curve.tsv", sep="\t")["k"].tolist() == [0, 1]


def test_nucleus_release_sets_real_image_and_painted_check_fields(tmp_path: Path) -> None:
    """The nucleus card's real image is stardist's (125 truth nuclei, about 24 px across) and
    its check set is whole painted fields with one mask label per nucleus."""
    (real,) = iter_sheet(stardist_sheet(tmp_path / "real"))
    assert real.dapi.shape == (512, 512) and len(np.unique(real.truth)) - 1 == 125
    assert object_diameter(real.truth) == pytest.approx(23.7, abs=0.1)
    fields = list(iter_sheet(paint_check_fields(tmp_path / "check")))
    assert len(fields) == CHECK_IMAGES
    assert all(
        field.truth.max() >= 10 and field.dapi.shape == field.truth.shape for field in fields
    )
    assert NUCLEI.estimate(real.dapi) == pytest.approx(23.7, rel=0.2)


def test_provenance_names_config_files_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another working directory, the card still names config/pretrain.yaml."""
    from fishline.model_card import provenance

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    info = provenance(
        [str(root / "config/pretrain.yaml")],
        7,
        {"a": {"b": 2, "c": 1}},
        {"a": {"b": 1, "c": 1}},
        root / "workflow/scripts",
    )
    assert info["configfiles"] == "config/pretrain.yaml"
    assert info["seed"] == 7 and info["settings"] == {"a": {"b": 2}}
    assert info["commit"] == "unknown" or len(info["commit"]) >= 7


def untrained_classifier(path: Path) -> Path:
    """A fishline FISH classifier file with random weights."""
    spec = {"classes": 3, "in_channels": 3}
    metadata = {
        "method": {
            "method": "ce",
            "batch_size": 8,
            "lr": [1.0e-5, 1.0e-3],
            "augment": "light",
            "smoothing": 0.0,
        },
        "input_size": 32,
        "epochs": 0,
        "train_images": 0,
        "seconds": 0.0,
        "device": "cpu",
        "threads": 1,
        "machine": model_files.machine(),
    }
    net = model_files.build("fishnet", spec)
    model_files.save(path, net, "fishnet", spec, ["normal", "gain", "amplification"], metadata)
    return path


def test_set_scores_on_known_predictions() -> None:
    predictions = pd.DataFrame(
        {
            "class_name": ["normal", "gain", "gain", "normal"],
            "predicted_class": ["normal", "normal", "gain", "gain"],
            "correct": [True, False, True, False],
            "certainty": [0.9, 0.6, 0.4, 0.2],
            "confidence": [0.95, 0.7, 0.6, 0.5],
        }
    )
    scores = set_scores(predictions, ["normal", "gain"], min_certainty=0.5)
    assert scores["patches"] == 4 and scores["accuracy"] == 0.5
    # two of four at least 0.5 certain, one of them right
    assert scores["certain_fraction"] == 0.5 and scores["certain_accuracy"] == 0.5
    assert scores["retained_50"] == 0.5 and scores["retained_20"] == 1.0  # the 0.9 one: right
    assert scores["confusion"] == [[1, 1], [1, 1]]
    none_certain = set_scores(predictions, ["normal", "gain"], min_certainty=0.95)
    assert none_certain["certain_fraction"] == 0 and np.isnan(none_certain["certain_accuracy"])


def test_classifier_release_writes_half_weights_with_their_card(
    tmp_path: Path, paint: FishPaintSettings
) -> None:
    stack, table = tmp_path / "test.tif", tmp_path / "test.parquet"
    paint_patch_set(paint, "test", 3, stack, table)
    provenance = {
        "configfiles": "config/fish_pretrain.yaml",
        "commit": "abc1234",
        "seed": 42,
        "settings": {"fish": {"train": {"epochs": 40}}},
    }
    out = tmp_path / "release"
    card = release_classifier(
        untrained_classifier(tmp_path / "ce.pt"),
        {"test": (stack, table)},
        0.5,
        provenance,
        out / "fish_classifier.pt",
        out / "fish_classifier.md",
        out / "scores.tsv",
    )
    saved = torch.load(out / "fish_classifier.pt", weights_only=False)
    floats = [v for v in saved["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert repr(saved["metadata"]["card"]) == repr(card)  # repr: NaN where none is certain
    assert list(card["summary"]) == ["painted check", "test"]
    assert card["summary"]["test"]["patches"] == 24 and card["check"]["patches"] == CHECK_PATCHES
    # the card's scores are those of the released half-precision file, run in float32
    loaded = model_files.load(out / "fish_classifier.pt")
    assert next(loaded[0].parameters()).dtype == torch.float32
    again = predict(loaded, stack, table, device="cpu", threads=1)
    assert card["summary"]["test"]["accuracy"] == again["correct"].mean()
    certain = again["certainty"] >= 0.5
    assert card["summary"]["test"]["certain_fraction"] == certain.mean()
    text = (out / "fish_classifier.md").read_text()
    assert file_sha256(out / "fish_classifier.pt") in text and "make pretrain-fish" in text
    assert "abc1234" in text and "| test | 24 |" in text and "epochs: 40" in text
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert scores["set"].tolist() == ["painted check", "test"]
    assert scores[["accuracy", "certain_fraction", "retained_50"]].stack().between(0, 1).all()
