"""FISH classifier: losses and uncertainty on hand-computed cases, augmentations, training."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import killed_after_first_checkpoint

from fishline import models
from fishline.errors import InputError
from fishline.evaluation import evaluate_predictions
from fishline.fish.classifier import (
    FishTrainSettings,
    load_patches,
    prepare_set,
    train_fish_model,
)
from fishline.io import encode_pages, write_stack
from fishline.nets.fish import FishNet
from fishline.nets.resnet import ResNet18
from fishline.paint import FishPaintSettings, paint_patch_set
from fishline.schema import default, settings_as_config
from fishline.train.augment import AUGMENTATIONS, augment
from fishline.train.loop import CPU_BF16_VARIABLE, bf16_autocast, cosine_lr
from fishline.train.losses import joint_loss, nt_xent
from fishline.uncertainty import (
    certainty,
    expected_calibration_error,
    retention_accuracy,
    smoothed_entropy_floor,
)

CLASSES = ["normal", "gain", "amplification"]


def test_nt_xent_hand_computed() -> None:
    unit = torch.eye(2)
    # each anchor: positive similarity 1, two negatives at 0 (the other pair is orthogonal)
    assert float(nt_xent(unit, unit, 1.0)) == pytest.approx(math.log(1 + 2 / math.e))
    assert float(nt_xent(unit, unit, 0.5)) == pytest.approx(math.log(1 + 2 * math.exp(-2)))
    # scale does not matter: cosine similarity
    assert float(nt_xent(3 * unit, unit, 1.0)) == pytest.approx(math.log(1 + 2 / math.e))


def test_joint_loss_adds_weighted_cross_entropy() -> None:
    unit = torch.eye(2)
    flat = torch.zeros(2, 3)  # uniform prediction: CE = log 3 whatever the smoothing
    total, parts = joint_loss((unit, unit), (flat, flat), torch.tensor([0, 1]), 0.5, 0.01, 1.0)
    expected = math.log(1 + 2 / math.e) + 0.5 * math.log(3)
    assert float(total) == pytest.approx(expected)
    assert parts["cross_entropy"] == pytest.approx(math.log(3))


def test_certainty_bounds() -> None:
    uniform = np.full((1, 3), 1 / 3)
    smoothed = np.array([[1 - 0.01 + 0.01 / 3, 0.01 / 3, 0.01 / 3]])
    one_hot = np.array([[1.0, 0.0, 0.0]])
    assert certainty(uniform)[0] == pytest.approx(0.0)
    assert certainty(smoothed)[0] == pytest.approx(1.0)
    assert certainty(one_hot)[0] == 1.0  # sharper than the smoothed target: clipped
    half = certainty(np.array([[0.5, 0.5, 0.0]]))[0]
    floor = smoothed_entropy_floor(3, 0.01)
    assert half == pytest.approx(1 - (math.log(2) - floor) / (math.log(3) - floor))


def test_ece_constructed() -> None:
    confidence = np.array([0.9, 0.9, 0.9, 0.9, 0.3, 0.3])
    correct = np.array([1, 1, 0, 0, 1, 1])
    ece = expected_calibration_error(confidence, correct)
    assert ece["ece_positive"] == pytest.approx(0.4 * 4 / 6)
    assert ece["ece_negative"] == pytest.approx(0.7 * 2 / 6)
    assert ece["ece"] == pytest.approx(0.5)
    perfect = expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1]))
    assert perfect["ece"] == 0.0


def test_retention_on_constructed_ranking() -> None:
    scores = np.array([0.6, 0.9, 0.7, 0.8])
    correct = np.array([1, 1, 0, 1])  # ranked by certainty: 1 (0.9), 1 (0.8), 0 (0.7), 1 (0.6)
    assert retention_accuracy(scores, correct, (100, 75, 50, 25)) == {
        100: 0.75,
        75: pytest.approx(2 / 3),
        50: 1.0,
        25: 1.0,
    }


def test_cosine_schedule() -> None:
    assert cosine_lr(0, 5, 100, 1e-5, 1e-3) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 5)
    assert cosine_lr(4, 5, 100, 1e-5, 1e-3) == pytest.approx(1e-3)
    assert cosine_lr(5 + 50, 5, 100, 1e-5, 1e-3) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_lr(5 + 100, 5, 100, 1e-5, 1e-3) == pytest.approx(1e-3)  # restart


def _preset(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(config["fish"]["augment"]["heavy"])


def test_augment_batch(config: dict[str, Any]) -> None:
    images = torch.rand(8, 3, 32, 32)
    settings = _preset(config)
    first = augment(images, settings, torch.Generator().manual_seed(1))
    again = augment(images, settings, torch.Generator().manual_seed(1))
    assert first.shape == images.shape and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    off = {k: {**v, "enabled": False} for k, v in settings.items()}
    assert torch.equal(augment(images, off, torch.Generator().manual_seed(1)), images)


@pytest.mark.parametrize("step", AUGMENTATIONS)
def test_each_augmentation_acts(config: dict[str, Any], step: str) -> None:
    images = torch.rand(4, 3, 32, 32) * 0.5 + 0.25
    settings = {k: {**v, "enabled": k == step} for k, v in _preset(config).items()}
    out = augment(images, settings, torch.Generator().manual_seed(3))
    assert (out - images).abs().max() > 1e-3, step


@pytest.mark.parametrize("classes", [1000, 2])
def test_resnet18_is_torchvisions(classes: int) -> None:
    """The local ResNet-18 has torchvision's state-dict keys; a seed draws the same weights
    and leaves the generator where torchvision leaves it; the outputs are the same."""
    import torchvision

    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None, num_classes=classes).eval()
    after_reference = torch.rand(1)
    torch.manual_seed(3)
    local = ResNet18(classes).eval()
    assert torch.equal(torch.rand(1), after_reference)
    expected, got = reference.state_dict(), local.state_dict()
    assert list(got) == list(expected)
    assert all(torch.equal(got[key], expected[key]) for key in expected)
    images = torch.rand(2, 3, 64, 64)
    assert torch.equal(local(images), reference(images))


def test_networks_import_no_torchvision() -> None:
    """Building the networks loads no torchvision (it imports torch._dynamo: about 1 CPU-s
    per job)."""
    code = (
        "import sys\n"
        "from fishline.nets.fish import FishNet\n"
        "from fishline.nets.chrom import ChromNet\n"
        "from fishline.nets.simsearch import SimSearchNet\n"
        "FishNet(3); ChromNet(2)\n"
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr[-500:]


def test_fishnet_shapes() -> None:
    representation, projection, logits = FishNet(3)(torch.rand(2, 3, 64, 64))
    assert representation.shape == (2, 128)
    assert projection.shape == (2, 64)
    assert logits.shape == (2, 3)


@pytest.fixture
def tiny_set(paint: FishPaintSettings, tmp_path: Path) -> tuple[str, str]:
    stack, table = tmp_path / "train.tif", tmp_path / "train.parquet"
    paint_patch_set(paint, "train", 1, stack, table)
    return str(stack), str(table)


def _method(kind: str, precision: str = "auto") -> FishTrainSettings:
    return FishTrainSettings(
        kind, epochs=2, pretrain_epochs=1, batch_size=8, input_size=32, precision=precision
    )


def _train(config, tiny_set, folder: Path, kind: str = "joint", precision: str = "auto") -> Path:
    model = folder / f"{kind}.pt"
    train_fish_model(
        *tiny_set,
        _method(kind, precision),
        config["fish"]["augment"],
        CLASSES,
        5,
        model,
        folder / f"{kind}.history.parquet",
        folder / f"{kind}.ckpt",
        device="cpu",
        threads=1,
    )
    return model


def test_settings_of_a_model_from_its_merged_block() -> None:
    """fish.train with a model's entry over it; config key ``lambda`` is field ``lambda_``,
    and the model file keeps the settings as that block."""
    block = {**default("fish.train"), **default("fish.models")["ce"]}
    settings = FishTrainSettings.from_config(block, "ce")
    assert settings == FishTrainSettings("ce", smoothing=0.0)
    assert settings.lambda_ == block["lambda"] and settings.lr == tuple(block["lr"])
    assert settings_as_config(settings) == block
    assert settings.phases() == [("ce", block["epochs"])]
    assert FishTrainSettings("cl_detached", epochs=3, pretrain_epochs=2).phases() == [
        ("contrastive", 2),
        ("detached", 3),
    ]
    with pytest.raises(InputError, match=r"fish\.models\.ce.*unknown key\(s\) \['lamda'\]"):
        FishTrainSettings.from_config({**block, "lamda": 0.1}, "ce")
    with pytest.raises(InputError, match=r"missing key\(s\) \['lambda'\]"):
        FishTrainSettings.from_config({k: v for k, v in block.items() if k != "lambda"}, "ce")


@pytest.mark.parametrize("kind", ["joint", "ce", "cl_detached", "cl_attached"])
def test_training_methods_write_loadable_models(config, tiny_set, tmp_path: Path, kind) -> None:
    path = _train(config, tiny_set, tmp_path, kind)
    model, info = models.load(path)
    assert info["class_names"] == CLASSES and info["metadata"]["method"]["method"] == kind
    assert model(torch.rand(2, 3, 32, 32))[2].shape == (2, 3)
    history = pd.read_parquet(tmp_path / f"{kind}.history.parquet")
    expected = {
        "joint": ["joint", "joint"],
        "ce": ["ce", "ce"],
        "cl_detached": ["contrastive", "detached", "detached"],
        "cl_attached": ["contrastive", "ce", "ce"],
    }[kind]
    assert history["objective"].tolist() == expected
    assert np.isfinite(history["loss"]).all()
    assert not (tmp_path / f"{kind}.ckpt").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_is_deterministic_and_resumes(
    config, tiny_set, tmp_path: Path, monkeypatch, precision: str
) -> None:
    reference = models.load(_train(config, tiny_set, tmp_path / "a", precision=precision))[0]
    reference = reference.state_dict()
    again = models.load(_train(config, tiny_set, tmp_path / "b", precision=precision))[0]
    again = again.state_dict()
    assert all(torch.equal(reference[k], again[k]) for k in reference)

    saves = killed_after_first_checkpoint(
        monkeypatch,
        lambda: _train(config, tiny_set, tmp_path / "c", precision=precision),
    )
    assert saves == [1] and (tmp_path / "c" / "joint.ckpt").exists()
    assert not (tmp_path / "c" / "joint.pt").exists()
    resumed = models.load(_train(config, tiny_set, tmp_path / "c", precision=precision))[0]
    resumed = resumed.state_dict()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_checkpoint_made_on_other_data_is_not_resumed(
    config, paint, tiny_set, tmp_path: Path, monkeypatch
) -> None:
    """Killed after epoch 1, the training set repainted (same settings and count, other
    seed): the rerun starts fresh, so it equals a clean training on the new data."""
    killed_after_first_checkpoint(
        monkeypatch, lambda: _train(config, tiny_set, tmp_path / "killed")
    )
    paint_patch_set(paint, "train", 2, *tiny_set)  # the inputs change under the checkpoint
    rerun = models.load(_train(config, tiny_set, tmp_path / "killed"))[0].state_dict()
    fresh = models.load(_train(config, tiny_set, tmp_path / "fresh"))[0].state_dict()
    assert all(torch.equal(rerun[k], fresh[k]) for k in fresh)


def test_bf16_autocast_choice(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not bf16_autocast(cuda, "fp32") and bf16_autocast(cpu, "bf16")
    assert bf16_autocast(cuda, "auto")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not bf16_autocast(cpu, "auto")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.delenv(CPU_BF16_VARIABLE, raising=False)
    assert bf16_autocast(cpu, "auto")
    monkeypatch.setenv(CPU_BF16_VARIABLE, "0")  # as on a CPU without bf16 units
    assert not bf16_autocast(cpu, "auto") and bf16_autocast(cpu, "bf16")
    assert bf16_autocast(cuda, "auto")


def test_precision_setting_reaches_the_network(config, tiny_set, tmp_path: Path) -> None:
    fp32 = models.load(_train(config, tiny_set, tmp_path / "fp32", precision="fp32"))[0]
    bf16 = models.load(_train(config, tiny_set, tmp_path / "bf16", precision="bf16"))[0]
    first, second = fp32.state_dict(), bf16.state_dict()
    assert all(
        first[k].dtype == second[k].dtype == torch.float32 for k in first if "num_batches" not in k
    )
    assert not all(torch.equal(first[k], second[k]) for k in first)


def test_labelled_set_errors(tiny_set) -> None:
    with pytest.raises(InputError, match=r"unknown class names \['amplification'\]"):
        load_patches(*tiny_set, ["normal", "gain"])
    with pytest.raises(InputError, match="expected N x 4 x H x W"):
        load_patches(*tiny_set, CLASSES, channels=4)


def test_sixteen_bit_patches_keep_their_bright_pixels(tmp_path) -> None:
    # Slide calling writes its crops as uint16 scaled to 65535; a pixel above half scale once
    # wrapped to a negative int16 and was clamped to black, so bright spots vanished.
    pixels = np.zeros((1, 3, 8, 8), np.uint16)
    pixels[0, 1, 2:4, 2:4] = 60000
    pixels[0, 2] = 30000
    stack, table = tmp_path / "crops.tif", tmp_path / "crops.parquet"
    write_stack(stack, encode_pages(pixels, "zlib"), pixels.shape, np.uint16, ["red", "green",
                "dapi"], "zlib", {"bit_depth": 16})  # fmt: skip
    pd.DataFrame({"index": [0], "class_name": ["gain"]}).to_parquet(table)
    raw, labels, _, full_scale = load_patches(stack, table, CLASSES)
    prepared = prepare_set(raw, full_scale, 8).float()
    assert full_scale == 65535 and labels.tolist() == [1]
    assert float(prepared[0, 1, 2, 2]) == pytest.approx(60000 / 65535, abs=1e-3)
    assert float(prepared[0, 2].mean()) == pytest.approx(30000 / 65535, abs=1e-3)


def test_evaluate_predictions_on_known_input() -> None:
    frame = pd.DataFrame(
        {
            "class_name": ["normal", "gain", "gain", "amplification"],
            "predicted_class": ["normal", "gain", "normal", "amplification"],
            "correct": [True, True, False, True],
            "certainty": [0.9, 0.8, 0.2, 0.7],
            "confidence": [0.95, 0.9, 0.5, 0.8],
        }
    )
    metrics = evaluate_predictions(frame, CLASSES)
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert metrics["retention"]["75"] == 1.0 and metrics["retention"]["100"] == 0.75


def test_ablation_table_on_known_predictions() -> None:
    from fishline.chromosomes.compare import ablation_table

    def run(accuracy: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"correct": [True] * int(accuracy * 10) + [False] * (10 - int(accuracy * 10))}
        )

    runs = {
        ("m", "test"): run(0.9),
        ("m_no_augment", "test"): run(0.5),
        ("m_without_noise", "test"): run(0.7),
    }
    table = ablation_table(runs, "m", ["noise"], ["test"])
    ours = table[table["source"] == "fishline test"].iloc[0]
    assert (ours["all"], ours["none"], ours["without noise"]) == (90.0, 50.0, 70.0)
    assert table.set_index("source").loc["paper, real nuclei", "none"] == 40.6


def test_spot_count_classes() -> None:
    from fishline.fish.spots import classify_counts

    counts = np.array([0, 2, 3, 7, 8, 30])
    assert classify_counts(counts, [2, 7]).tolist() == [0, 0, 1, 1, 2, 2]


def test_spot_counter_counts_separated_spots(clean_settings: FishPaintSettings) -> None:
    from fishline.fish.spots import central_nucleus, count_spots, log_maxima
    from fishline.paint import render_patches
    from fishline.paint.optics import quantise

    cond = np.repeat([0, 1], 20)
    images, masks, record = render_patches(np.random.default_rng(4), clean_settings, cond)
    planes = quantise(images, 8)
    found = count_spots(
        planes[:, 1], 5.0, False, np.stack([central_nucleus(p) for p in planes[:, 2]])
    )
    drawn = np.asarray(record["target_spots"])
    assert np.mean(found == drawn) >= 0.6  # LoG counts merge touching spots, as big-fish does
    assert np.mean(np.abs(found - drawn) <= 1) >= 0.9
    # the LoG responses filtered once give big-fish's own detections at every threshold
    from bigfish.detection import detect_spots

    responses = log_maxima(planes[:, 1])
    for threshold in (3.0, 5.0, 9.0):
        spots = [
            detect_spots(p, threshold=threshold, log_kernel_size=1.5, minimum_distance=2)
            for p in planes[:, 1]
        ]
        got = count_spots(planes[:, 1], threshold, False, None, responses)
        assert got.tolist() == [len(s) for s in spots]
    nucleus = central_nucleus(planes[0, 2])
    assert (nucleus & masks[0]).sum() / masks[0].sum() > 0.95  # Otsu finds the painted nucleus


def test_backbone_weights_from_a_local_file(tmp_path: Path) -> None:
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    torch.save(source.state_dict(), tmp_path / "resnet18.pt")
    model = FishNet(3, weights=str(tmp_path / "resnet18.pt"))
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    with pytest.raises(InputError, match="not found"):
        FishNet(3, weights=str(tmp_path / "missing.pt"))
    torch.save({"unrelated": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a ResNet-18 state dict"):
        FishNet(3, weights=str(tmp_path / "other.pt"))
