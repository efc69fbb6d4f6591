"""SimSearch training, detection and evaluation on small constructed cases."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from fishline import models
from fishline.errors import InputError
from fishline.schema import default
from fishline.simsearch.detect import (
    detect,
    detect_image,
    overlay_figure,
    probability_maps,
    segmentation_map,
)
from fishline.simsearch.evaluate import (
    ablation_figure,
    ablation_table,
    evaluate_detections,
    match_detections,
    pr_auc,
    precision_recall,
)
from fishline.simsearch.images import ImageSet
from fishline.simsearch.settings import (
    AugmentSettings,
    CellCallSettings,
    DetectSettings,
    Dropout,
    PseudoLabelSettings,
    SearchSettings,
    Solarize,
    SupConSettings,
    TrainSettings,
)
from fishline.simsearch.train import (
    augment_batch,
    confirmed_labels,
    oversample,
    sized_schedule,
    supcon_loss,
    train_simsearch,
)

SIZE = 24


def shape(kind: str, dy: float = 0.0, dx: float = 0.0, size: int = SIZE) -> np.ndarray:
    """A disc (radius 6) or ring (radius 7, 2 px wide) centred in a size x size window."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2 - dy, xx - (size - 1) / 2 - dx)
    if kind == "disc":
        return (r <= 6).astype(np.float32)
    if kind == "small":
        return (r <= 3).astype(np.float32)
    return ((r >= 5) & (r <= 7)).astype(np.float32)


def patch_set(seed: int, per_class: int = 24) -> tuple[np.ndarray, pd.DataFrame]:
    """2-channel uint8 patches: discs and rings (targets), background (noise, off-centre
    objects) and small discs as the disc class's negatives."""
    rng = np.random.default_rng(seed)
    images, rows = [], []

    def add(kind: str | None, label: str, role: str, negative_of: str | None, off: float) -> None:
        dy, dx = rng.uniform(-off, off, 2)
        if off > 3:  # background: shift the object far off-centre
            dy, dx = np.sign(rng.uniform(-1, 1, 2)) * rng.uniform(9, 12, 2)
        signal = shape(kind, dy, dx) if kind else np.zeros((SIZE, SIZE), np.float32)
        image = np.stack(
            [signal * rng.uniform(0.6, 0.9), rng.uniform(0.1, 0.3) * np.ones((SIZE, SIZE))]
        )
        image = image + rng.normal(0, 0.04, image.shape)
        images.append(np.clip(image * 255, 0, 255).astype(np.uint8))
        rows.append({"label": label, "role": role, "negative_of": negative_of})

    for _ in range(per_class):
        add("disc", "disc", "positive", None, 1)
        add("ring", "ring", "positive", None, 1)
        add(None, "background", "background", None, 0)
        add(("disc", "ring")[len(rows) % 2], "background", "background", None, 10)
    for _ in range(per_class // 3):
        add("small", "background", "negative", "disc", 1)
    table = pd.DataFrame(rows)
    table.insert(0, "index", np.arange(len(table)))
    return np.stack(images), table


def tiny_settings(**changes: object) -> TrainSettings:
    defaults = TrainSettings()
    return replace(
        defaults,
        input_size=SIZE,
        simclr=replace(defaults.simclr, epochs=1, batch_size=48),
        supcon=replace(defaults.supcon, epochs=2, batch_size=32),
        linear=replace(defaults.linear, epochs=30),
        **changes,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models of two strategies on the discs-vs-rings set (one self-learning)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("simsearch_train")
    clean, noisy = patch_set(0), patch_set(1, per_class=12)
    noisy[1]["label"] = noisy[1]["label"].where(noisy[1]["role"] != "negative", "background")
    paths = {}
    settings = tiny_settings(
        self_learning=("simclr", "pseudo_labels"), pseudo_labels=PseudoLabelSettings(supcon=True)
    )
    for strategy in ("pos_neg", "pos_selflearn"):
        paths[strategy] = folder / f"{strategy}.pt"
        info = train_simsearch(
            clean,
            noisy,
            settings,
            strategy,
            3,
            "cpu",
            1,
            str(paths[strategy]),
            str(folder / f"{strategy}.parquet"),
        )
        paths[f"{strategy}_info"] = info
    return paths


def test_supcon_hand_computed() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 0])
    # anchors 0 and 2: positive s = 1, denominator e^1 + e^0; anchor 1 has no positive
    expected = math.log(1 + math.e) - 1
    assert supcon_loss(z, labels, 1.0).item() == pytest.approx(expected, abs=1e-6)
    negatives = {0: torch.tensor([[0.0, 1.0], [-2.0, 0.0]])}  # s = 0 and -1 (normalised)
    expected = math.log(2 + math.e + math.exp(-1)) - 1
    got = supcon_loss(z, labels, 1.0, negatives).item()
    assert got == pytest.approx(expected, abs=1e-6)
    # scaling by the temperature: tau = 0.5 doubles every similarity
    expected = math.log(1 + math.exp(2)) - 2
    assert supcon_loss(z, labels, 0.5).item() == pytest.approx(expected, abs=1e-6)


def test_supcon_matches_a_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    negatives = {1: torch.randn(3, 4, generator=generator)}
    n = F.normalize(z, dim=1)
    total, anchors = 0.0, 0
    for i in range(6):
        denominator = sum(math.exp(float(n[i] @ n[a]) / 0.3) for a in range(6) if a != i)
        for m in F.normalize(negatives.get(int(labels[i]), torch.zeros(0, 4)), dim=1):
            denominator += math.exp(float(n[i] @ m) / 0.3)
        positives = [p for p in range(6) if p != i and labels[p] == labels[i]]
        if positives:
            anchors += 1
            total += -sum(
                float(n[i] @ n[p]) / 0.3 - math.log(denominator) for p in positives
            ) / len(positives)
    assert supcon_loss(z, labels, 0.3, negatives).item() == pytest.approx(total / anchors, rel=1e-5)


def test_augmentations_shapes_and_determinism() -> None:
    images = torch.rand(16, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    settings = AugmentSettings()
    first = augment_batch(images, settings, torch.Generator().manual_seed(5))
    second = augment_batch(images, settings, torch.Generator().manual_seed(5))
    other = augment_batch(images, settings, torch.Generator().manual_seed(6))
    assert first.shape == images.shape and first.dtype == torch.float32
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    # geometry only: every output is one of the 8 flips/rotations of its input
    plain = AugmentSettings(
        flip=True,
        rotate=True,
        solarize=Solarize(p=0.0, threshold=1.0),
        dropout=Dropout(p=0.0, size=0.2),
        brightness=0.0,
        contrast=(1.0, 1.0),
    )
    moved = augment_batch(images, plain, torch.Generator().manual_seed(1))
    for source, result in zip(images, moved, strict=True):
        views = [
            torch.rot90(v, k, dims=(1, 2)) for v in (source, source.flip(-1)) for k in range(4)
        ]
        assert any(torch.allclose(result, view) for view in views)
    # dropout with p = 1 zeroes one square of side 0.25 * 24 = 6 px in every channel
    holes = replace(plain, flip=False, rotate=False, dropout=Dropout(p=1.0, size=0.25))
    ones = augment_batch(torch.ones(4, 2, SIZE, SIZE), holes, torch.Generator().manual_seed(2))
    assert ((ones == 0).sum(dim=(1, 2, 3)) == 2 * 36).all()


def test_schedule_sized_to_the_data() -> None:
    """Few patches get whole epochs added up to min_steps, with the decays stretched alike."""
    stage = SupConSettings(epochs=3, step=2, min_steps=60, lr=0.001)
    assert sized_schedule(stage, 4) == replace(stage, epochs=15, step=10)  # 60 steps
    assert sized_schedule(stage, 7).epochs == 9  # 63 steps: whole epochs
    assert sized_schedule(stage, 40) == stage  # 120 steps already
    assert sized_schedule(replace(stage, min_steps=0), 1) == replace(stage, min_steps=0)


def test_oversampling_balances_classes() -> None:
    labels = np.array(["a"] * 90 + ["b"] * 10)
    drawn = oversample(labels, 4000, torch.Generator().manual_seed(0)).numpy()
    share = float(np.mean(labels[drawn] == "b"))
    assert 0.45 < share < 0.55


def test_trained_models_load_and_separate(trained: dict, tmp_path: Path) -> None:
    stack, table = patch_set(7, per_class=8)
    keep = table["role"] == "positive"
    images = torch.as_tensor(stack[keep.to_numpy()]).float() / 255
    for strategy in ("pos_neg", "pos_selflearn"):
        model, info = models.load(trained[strategy])
        assert info["kind"] == "simsearch"
        assert info["class_names"] == ["disc", "ring", "background"]
        assert info["metadata"]["strategy"] == strategy
        assert info["metadata"]["patch"] == [SIZE, SIZE]
        with torch.no_grad():
            predicted = model(images).argmax(1).numpy()
        truth = table.loc[keep, "label"].map({"disc": 0, "ring": 1}).to_numpy()
        assert np.mean(predicted == truth) >= 0.9, strategy
        history = pd.read_parquet(str(trained[strategy]).replace(".pt", ".parquet"))
        stages = ["supcon", "linear"]
        if strategy == "pos_selflearn":  # both ways of self-learning, SupCon again on the pseudo
            stages = ["simclr", "supcon", "linear", "supcon_pseudo", "linear_pseudo"]
        assert list(dict.fromkeys(history["stage"])) == stages
    assert trained["pos_neg_info"]["negatives"] == 8
    assert trained["pos_neg_info"]["pseudo_labelled"] == 0
    assert trained["pos_selflearn_info"]["clean"] == 96  # negatives dropped
    assert trained["pos_selflearn_info"]["noisy"] == 52
    # the noisy set's 48 discs, rings and backgrounds are easy: most are confirmed
    assert 30 <= trained["pos_selflearn_info"]["pseudo_labelled"] <= 52


def test_pseudo_labels_confirmed_only_where_the_model_agrees(trained: dict) -> None:
    """The confidence filter keeps the right labels of discs and rings and drops swapped ones."""
    model, _ = models.load(trained["pos_neg"])
    stack, table = patch_set(11, per_class=8)
    keep = (table["role"] == "positive").to_numpy()
    images = torch.as_tensor(stack[keep]).float() / 255
    right = torch.as_tensor(
        table.loc[keep, "label"].map({"disc": 0, "ring": 1}).to_numpy(copy=True)
    )
    confirmed = confirmed_labels(model, images, right, 0.9)
    swapped = confirmed_labels(model, images, 1 - right, 0.9)
    assert confirmed.dtype == torch.bool and confirmed.shape == (16,)
    assert confirmed.sum() >= 12
    assert swapped.sum() == 0
    assert confirmed_labels(model, images, right, 0.0).all()  # no bar: every label kept


def test_training_is_seeded(tmp_path: Path, trained: dict) -> None:
    clean = patch_set(0)
    train_simsearch(
        clean,
        None,
        tiny_settings(),
        "pos_neg",
        3,
        "cpu",
        1,
        str(tmp_path / "again.pt"),
        str(tmp_path / "again.parquet"),
    )
    first = torch.load(trained["pos_neg"], weights_only=False)["state_dict"]
    again = torch.load(tmp_path / "again.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_settings_from_a_config_block() -> None:
    """The schema's block gives the dataclass defaults; a misspelled or missing key, at any
    depth, is an error naming it instead of a silent default."""
    block = default("simsearch.train")
    settings = TrainSettings.from_config(block)
    assert settings == TrainSettings() and settings.augment.contrast == (0.7, 1.3)
    assert asdict(settings)["supcon"] == block["supcon"]
    del block["supcon"]["temperature"]
    block["linaer"] = {}
    with pytest.raises(InputError, match=r"unknown key\(s\) \['linaer'\]"):
        TrainSettings.from_config(block)
    del block["linaer"]
    with pytest.raises(InputError, match=r"\[supcon\].*missing key\(s\) \['temperature'\]"):
        TrainSettings.from_config(block)
    block["supcon"] = default("simsearch.train.supcon")
    block["augment"]["dropout"] = 0.3
    with pytest.raises(InputError, match=r"\[augment.dropout\]: expected a mapping"):
        TrainSettings.from_config(block)


def test_search_detect_and_cell_settings_from_the_config_blocks() -> None:
    """The schema's blocks give the defaults (their ``enabled`` / ``segmentation`` switches
    are the workflow's); the stride defaults to 0.1 x the window, as in the paper."""
    assert SearchSettings.from_config(default("simsearch.search")) == SearchSettings()
    assert SearchSettings(patch=64).geometry() == ((64, 64), pytest.approx(6.4))
    assert SearchSettings(patch=64, stride=8).geometry() == ((64, 64), 8.0)
    with pytest.raises(InputError, match=r"unknown key\(s\) \['strde'\]"):
        SearchSettings.from_config({**default("simsearch.search"), "strde": 8})
    assert DetectSettings.from_config(default("simsearch.detect")) == DetectSettings()
    cells = CellCallSettings.from_config(default("simsearch.cells"))
    assert cells == CellCallSettings() and cells.prototypes == (1, 5)
    with pytest.raises(InputError, match=r"\[self_learning\].*missing key\(s\) \['neighbours'\]"):
        CellCallSettings.from_config(
            {**default("simsearch.cells"), "self_learning": {"min_confidence": 0.8}}
        )


def test_training_rejects_bad_input(tmp_path: Path) -> None:
    stack, table = patch_set(0, per_class=3)
    with pytest.raises(InputError, match="unknown strategy"):
        train_simsearch((stack, table), None, tiny_settings(), "magic", 0, "cpu", 1, "m", "h")
    with pytest.raises(InputError, match="needs noisy patches"):
        train_simsearch(
            (stack, table), None, tiny_settings(), "pos_selflearn", 0, "cpu", 1, "m", "h"
        )
    with pytest.raises(InputError, match="1 channels, the clean ones 2"):
        train_simsearch(
            (stack, table),
            (stack[:, :1], table),
            tiny_settings(),
            "pos_selflearn",
            0,
            "cpu",
            1,
            "m",
            "h",
        )
    with pytest.raises(InputError, match="do not index"):
        train_simsearch((stack[:-1], table), None, tiny_settings(), "pos", 0, "cpu", 1, "m", "h")


def planted_image() -> tuple[np.ndarray, pd.DataFrame]:
    """2 x 96 x 120 image with two discs and two rings at known centres."""
    rng = np.random.default_rng(4)
    image = np.zeros((2, 96, 120), np.float32)
    truth = pd.DataFrame(
        {"x": [24, 84, 30, 90], "y": [24, 30, 70, 68], "class": ["disc", "disc", "ring", "ring"]}
    )
    for x, y, kind in truth.itertuples(index=False):
        image[0, y - 12 : y + 12, x - 12 : x + 12] = np.maximum(
            image[0, y - 12 : y + 12, x - 12 : x + 12], 0.75 * shape(kind, 0.5, 0.5)
        )
    image[1] = 0.2
    return np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32), truth


def test_probability_maps_windows_match_cut_patches() -> None:
    """The batched windows are the reflect-padded patches centred on (ys, xs)."""
    image = np.random.default_rng(0).random((2, 20, 26)).astype(np.float32)

    class Probe(torch.nn.Module):  # 2 "classes": the mean of channel 0 and its complement
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean = x[:, 0].mean(dim=(1, 2))
            return torch.stack([torch.log(mean), torch.log(1 - mean)], 1)

    probs, ys, xs = probability_maps(Probe(), image, (7, 6), 4, "cpu", 5)
    assert probs.shape == (2, 5, 6) and list(ys) == [2, 6, 10, 14, 18]
    quantised = np.round(image * 255) / 255
    padded = np.pad(quantised[0], ((3, 3), (3, 2)), mode="reflect")
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            window = padded[y : y + 7, x : x + 6]  # centre (y, x): rows y-3 .. y+3
            assert probs[0, i, j] == pytest.approx(window.mean(), abs=1e-5)


def test_detection_finds_planted_objects(trained: dict, tmp_path: Path) -> None:
    image, truth = planted_image()
    model, info = models.load(trained["pos_neg"])
    found = detect_image(
        model,
        image,
        "planted",
        info["class_names"],
        (SIZE, SIZE),
        3,
        {"disc": 0.5, "ring": 0.5},
        input_size=SIZE,
    )
    result = evaluate_detections(found, {"planted": truth}, ["disc", "ring"], radius=9)
    assert result["classes"]["disc"]["tp"] == 2 and result["classes"]["ring"]["tp"] == 2
    assert result["mean_auc"] > 0.8
    image_set = ImageSet(
        "sheet.tsv", ["a", "b"], {"planted": image}, np.zeros((2, 2)), {"planted": truth}
    )
    again = detect(trained["pos_neg"], image_set, None, 3, {"disc": 0.5, "ring": 0.5}, threads=1)
    assert list(again.columns) == ["image", "x", "y", "class", "confidence"]
    assert len(again) == len(found)
    probs, ys, xs = probability_maps(model, image, (SIZE, SIZE), 3, "cpu", 64, SIZE)
    labels = segmentation_map(
        probs, ys, xs, image.shape[1:], info["class_names"], {"disc": 0.5, "ring": 0.5}
    )
    assert labels.shape == (96, 120) and labels.dtype == np.int32
    assert labels[24, 24] == 1 and labels[70, 30] == 2 and labels[4, 60] == 0
    overlay_figure(image, found, truth, tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="unknown class"):
        detect_image(model, image, "x", info["class_names"], (SIZE, SIZE), 3, {"cell": 0.5})


def test_segmentation_map_hand_made() -> None:
    probs = np.zeros((3, 2, 2), np.float32)
    probs[2] = 1.0  # background everywhere ...
    probs[:, 0, 0] = [0.7, 0.1, 0.2]  # ... but class a at the top-left centre
    probs[:, 1, 1] = [0.1, 0.5, 0.4]  # class b, below its threshold 0.6
    labels = segmentation_map(
        probs,
        np.array([2, 6]),
        np.array([2, 6]),
        (8, 8),
        ["a", "b", "background"],
        {"a": 0.6, "b": 0.6},
    )
    assert labels[0, 0] == 1 and labels[2, 2] == 1 and labels[7, 7] == 0 and labels[4, 4] == 0


def test_matching_counts() -> None:
    truth = pd.DataFrame({"x": [10, 50, 90], "y": [10, 10, 10], "class": ["a", "a", "b"]})
    found = pd.DataFrame(
        {
            "x": [12, 11, 50, 90, 200],
            "y": [10, 10, 40, 10, 10],
            "class": ["a", "a", "a", "a", "b"],
            "confidence": [0.9, 0.8, 0.7, 0.6, 0.5],
        }
    )
    matched, points = match_detections(found, truth, radius=5)
    # 0.9 takes truth 0; 0.8 finds it taken (FP); (50, 40) too far; (90, 10) wrong class
    assert matched["tp"].tolist() == [True, False, False, False, False]
    assert points["matched"].tolist() == [True, False, False]
    result = evaluate_detections(found.assign(image="i"), {"i": truth}, ["a", "b"], 5)
    assert result["classes"]["a"] == {
        "auc": pytest.approx(0.5),
        "tp": 1,
        "fp": 3,
        "fn": 1,
        "truth": 2,
        "detections": 4,
    }
    assert result["classes"]["b"]["auc"] == 0.0 and result["classes"]["b"]["fn"] == 1
    nothing = evaluate_detections(found.iloc[:0].assign(image="i"), {"i": truth}, ["a"], 5)
    assert nothing["classes"]["a"]["fn"] == 2 and nothing["mean_auc"] == 0.0
    with pytest.raises(InputError, match="missing column"):
        evaluate_detections(found, {"i": truth}, ["a"], 5)


def test_pr_auc_cases() -> None:
    assert pr_auc(np.array([0.9, 0.8, 0.3]), np.array([True, True, True]), 3) == 1.0
    # ranking TP, FP, TP with 3 truths: P = 1, 1/2, 2/3 at R = 1/3, 1/3, 2/3
    assert pr_auc(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3) == pytest.approx(
        1 / 3 + 2 / 9
    )
    # tied confidences form one threshold: P = 1/2 at R = 1/2
    assert pr_auc(np.array([0.5, 0.5]), np.array([True, False]), 2) == pytest.approx(0.25)
    curve = precision_recall(np.array([0.5, 0.9]), np.array([False, True]), 1)
    assert curve["threshold"].tolist() == [0.9, 0.5]
    assert curve["precision"].tolist() == [1.0, 0.5] and curve["recall"].tolist() == [1.0, 1.0]
    assert np.isnan(pr_auc(np.array([0.5]), np.array([False]), 0))


def test_ablation_table_and_figure(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "strategy": [
                "pos",
                "pos",
                "pos_neg_selflearn",
                "pos_neg_selflearn",
                "supervised",
                "supervised",
            ],
            "prototypes": [5, 5, 5, 5, None, None],
            "negatives": [0, 0, 5, 5, None, None],
            "auc": [0.6, 0.8, 0.9, 0.9, 0.7, 0.8],
        }
    )
    table = ablation_table(frame)
    row = table[table["strategy"] == "pos"].iloc[0]
    assert row["setting"] == "P=5 N=0" and row["runs"] == 2
    assert row["mean"] == pytest.approx(0.7) and row["std"] == pytest.approx(0.1414, abs=1e-4)
    assert row["text"] == "0.700 ± 0.141"
    assert table[table["strategy"] == "supervised"].iloc[0]["setting"] == "supervised"
    ablation_figure(frame, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").stat().st_size > 1000


def test_single_class_negative_trains(tmp_path: Path) -> None:
    """One flagged negative is enough (anchors and negatives share one batch-norm pass)."""
    stack, table = patch_set(2, per_class=3)
    assert (table["role"] == "negative").sum() == 1
    settings = tiny_settings()
    settings = replace(
        settings,
        supcon=replace(settings.supcon, epochs=1),
        linear=replace(settings.linear, epochs=1),
    )
    info = train_simsearch(
        (stack, table),
        None,
        settings,
        "pos_neg",
        0,
        "cpu",
        1,
        str(tmp_path / "m.pt"),
        str(tmp_path / "h.parquet"),
    )
    assert info["negatives"] == 1 and info["clean"] == 12  # the negative is not background
    history = pd.read_parquet(tmp_path / "h.parquet")
    assert history["stage"].tolist() == ["supcon", "linear"]
    assert np.isfinite(history["loss"]).all()


def test_training_leaves_torch_global_settings_as_they_were(tmp_path: Path) -> None:
    """A notebook's thread count, deterministic mode and random stream survive the call."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        torch.use_deterministic_algorithms(False)
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        train_simsearch(
            patch_set(0, per_class=6),
            None,
            tiny_settings(),
            "pos",
            3,
            "cpu",
            1,
            str(tmp_path / "m.pt"),
            str(tmp_path / "h.parquet"),
        )
        assert torch.get_num_threads() == 3
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.equal(torch.rand(3), expected)
    finally:
        torch.set_num_threads(threads)


def test_pretrained_backbone_fine_tunes_from_the_search_features(tmp_path: Path) -> None:
    """backbone efficientnet_lite0: the trunk starts as the search features' pretrained
    EfficientNet-Lite0 (per channel), SupCon leaves its early blocks as they were and moves
    the rest, and the model learns discs against rings and reloads from its file alone."""
    from fishline.nets.simsearch import SimSearchNet
    from fishline.simsearch.features import efficientnet_trunk

    settings = replace(tiny_settings(), backbone="efficientnet_lite0", input_size=32)
    path = tmp_path / "lite.pt"
    train_simsearch(
        patch_set(0), None, settings, "pos", 3, "cpu", 1, str(path), str(tmp_path / "h.pq")
    )
    model, info = models.load(path)
    assert info["spec"]["backbone"] == "efficientnet_lite0"
    assert isinstance(model, SimSearchNet) and model.embed(torch.zeros(1, 2, 32, 32)).shape == (
        1,
        160,
    )
    start = efficientnet_trunk(None).state_dict()
    tuned = model.trunk.trunk.state_dict()
    stem = "0.weight"  # the stem convolution: frozen
    assert torch.equal(tuned[stem].float(), start[stem].float())
    moved = [k for k in start if k.endswith("weight") and not torch.equal(tuned[k], start[k])]
    assert moved, "the later blocks were fine-tuned"
    stack, table = patch_set(7, per_class=8)
    keep = (table["role"] == "positive").to_numpy()
    images = F.interpolate(torch.as_tensor(stack[keep]).float() / 255, size=(32, 32))
    with torch.no_grad():
        predicted = model(images).argmax(1).numpy()
    truth = table.loc[keep, "label"].map({"disc": 0, "ring": 1}).to_numpy()
    assert np.mean(predicted == truth) >= 0.9
