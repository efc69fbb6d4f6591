"""Chromosome classifier, features, the comparison table and the filter's geometry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.metrics import structural_similarity
from sklearn.mixture import GaussianMixture

from fishline.chromosomes.classifier import (
    ClassifierAugment,
    ClassifierSettings,
    aberration_scores,
    compare_table,
    extract_features,
    load_crops,
    train_classifiers,
)
from fishline.chromosomes.filter import (
    FilterSettings,
    MixtureFilter,
    chi2_radius2,
    component_levels,
    fit_mixture,
    inside_ellipses,
    max_ssim,
)
from fishline.errors import InputError
from fishline.io import encode_pages, write_stack
from fishline.schema import default

SETTINGS = ClassifierSettings(
    epochs=6, batch_size=16, lr=0.001, input_size=32, augment=ClassifierAugment(20, (0.9, 1.1))
)


def _crops(folder: Path, name: str, labels: list[str], seed: int = 0) -> tuple[str, str]:
    """DAPI bars; aberrations carry red paint on the upper half (the class signal)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    stack = np.zeros((n, 3, 32, 32), np.uint8)
    for i, label in enumerate(labels):
        left = int(rng.integers(10, 14))
        stack[i, 0, 4:28, left : left + 8] = rng.integers(100, 200)
        if label == "aberration":
            stack[i, 1, 4:16, left : left + 8] = rng.integers(150, 250)
        else:
            stack[i, 2, 4:28, left : left + 8] = rng.integers(0, 250) * (rng.random() < 0.5)
    table = pd.DataFrame({"index": np.arange(n), "label": labels})
    tif, parquet = folder / f"{name}.tif", folder / f"{name}.parquet"
    write_stack(
        tif, encode_pages(stack, "zlib"), stack.shape, np.uint8, ("dapi", "red", "green"), "zlib"
    )
    table.to_parquet(parquet, index=False)
    return str(tif), str(parquet)


def test_settings_from_the_config_block() -> None:
    """The schema's block (its seed count is the workflow's) gives the defaults."""
    block = default("chromosomes.classifier")
    assert ClassifierSettings.from_config(block) == ClassifierSettings()
    assert ClassifierSettings().augment.scale == tuple(block["augment"]["scale"])
    with pytest.raises(InputError, match=r"unknown key\(s\) \['epoch'\]"):
        ClassifierSettings.from_config({**block, "epoch": 3})


def test_scores_of_the_aberration_class() -> None:
    scores = aberration_scores(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]))
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})


def test_train_evaluate_features_and_compare(tmp_path: Path) -> None:
    labels = ["normal"] * 60 + ["aberration"] * 36 + ["unmatched"] * 4
    train = _crops(tmp_path, "train", labels)
    test = _crops(tmp_path, "test", ["normal"] * 20 + ["aberration"] * 10, seed=1)
    synth = _crops(tmp_path, "synth", ["aberration"] * 6, seed=2)
    kept = tmp_path / "kept.parquet"
    pd.DataFrame({"index": range(6), "kept": [True, False] * 3}).to_parquet(kept)
    models = [tmp_path / "a.pt"]
    metrics = train_classifiers(
        train, [(*synth, str(kept))], test, SETTINGS, False, [5], models,
        tmp_path / "m.tsv", tmp_path / "p.parquet", "cpu",
    )  # fmt: skip
    row = metrics.iloc[0]
    assert row["train_real"] == 96 and row["train_synthetic"] == 3  # unmatched and unkept out
    assert row["test_aberrations"] == 10
    # red paint separates the classes; any constant prediction scores F1 <= 0.5 here
    assert row["f1"] >= 0.6 and row["precision"] >= 0.8, metrics
    again = train_classifiers(
        train, [(*synth, str(kept))], test, SETTINGS, False, [5], [tmp_path / "b.pt"],
        tmp_path / "m2.tsv", tmp_path / "p2.parquet", "cpu",
    )  # fmt: skip
    assert again.equals(metrics)  # seeded: same config, same numbers
    features = extract_features(models[0], {"test": test}, tmp_path / "f.parquet", "cpu")
    assert len(features) == 30 and np.stack(features["features"]).shape == (30, 512)
    table = compare_table(
        {("real", "augmented"): tmp_path / "m.tsv"}, tmp_path / "c.tsv", tmp_path / "c.html"
    )
    assert table.loc[0, "paper F1"] == "0.81 ± 0.01"
    assert table.loc[0, "f1"] == f"{row['f1']:.2f} ± 0.00"


def test_empty_aberration_class_is_named(tmp_path: Path) -> None:
    train = _crops(tmp_path, "train", ["normal"] * 8)
    with pytest.raises(InputError, match=r"train.parquet \[label\]: no 'aberration' crops"):
        train_classifiers(
            train, [], train, SETTINGS, False, [1], [tmp_path / "a.pt"],
            tmp_path / "m.tsv", tmp_path / "p.parquet", "cpu",
        )  # fmt: skip
    kept = tmp_path / "kept.parquet"
    pd.DataFrame({"index": [9], "kept": [True]}).to_parquet(kept)
    with pytest.raises(InputError, match="indexes rows beyond the 8 crops"):
        load_crops(*train, 32, kept=kept)


def test_ellipse_membership_follows_the_chi_square_radius() -> None:
    assert chi2_radius2(0.95) == pytest.approx(5.991, abs=1e-3)
    gmm = GaussianMixture(1, covariance_type="full")
    gmm.means_ = np.zeros((1, 2))
    gmm.covariances_ = np.array([[[4.0, 0.0], [0.0, 1.0]]])
    gmm.weights_ = np.array([1.0])
    radius = math.sqrt(chi2_radius2(0.5))  # about 1.177 standard deviations
    points = np.array([[2 * radius * 0.99, 0], [2 * radius * 1.01, 0], [0, radius * 1.01]])
    assert list(inside_ellipses(points, gmm, np.array([0.5]))) == [True, False, False]
    assert list(component_levels(np.array([0.7, 0.3]), "weight", 0.95)) == [0.7, 0.3]
    assert list(component_levels(np.array([0.7, 0.3]), "fixed", 0.95)) == [0.95, 0.95]


def test_mixture_needs_aberrations() -> None:
    with pytest.raises(InputError, match=r"f.parquet \[aberration\]: 2 real aberration crops"):
        fit_mixture(np.zeros((2, 2)), 2, 0, "f.parquet")
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(-5, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    gmm = fit_mixture(points, 2, 0, "f")
    assert sorted(np.round(gmm.means_[:, 0])) == [-5, 5]
    assert inside_ellipses(points, gmm, component_levels(gmm.weights_, "fixed", 0.99)).mean() > 0.9


def test_mixture_filter_keeps_samples_that_look_like_real_aberrations() -> None:
    """Real normals and aberrations are two clusters of 16-d features; synthetic samples
    drawn near the aberrations pass, those near the normals or far from both do not."""
    rng = np.random.default_rng(1)
    centre = {"normal": np.zeros(16), "aberration": np.full(16, 6.0)}
    labels = ["normal"] * 60 + ["aberration"] * 60 + ["unlabelled"] * 5
    real = pd.DataFrame(
        {
            "label": labels,
            "features": [
                centre.get(lab, np.full(16, -6.0)) + rng.normal(0, 1, 16) for lab in labels
            ],
        }
    )
    settings = FilterSettings(components=1, rule="fixed", level=0.99)
    chosen = MixtureFilter.fit(real, settings, seed=0)
    assert len(chosen.real) == 120 and chosen.real_aberrations_inside()["fixed"] > 0.9
    near = np.stack([centre["aberration"] + rng.normal(0, 1, 16) for _ in range(20)])
    normal = np.stack([centre["normal"] + rng.normal(0, 1, 16) for _ in range(20)])
    placed = chosen.place(np.concatenate([near, normal]))
    assert list(placed.columns) == ["umap_x", "umap_y", "inside_weight", "inside_fixed", "kept"]
    assert placed["kept"][:20].mean() >= 0.9 and not placed["kept"][20:].any()
    assert placed["kept"].equals(placed["inside_fixed"])
    assert FilterSettings.from_config({**vars(settings), "features_from": "plain"}) == settings
    with pytest.raises(InputError, match=r"f.parquet \[label\]: no real aberration crops"):
        MixtureFilter.fit(real[real["label"] != "aberration"], settings, 0, "f.parquet")


def test_max_ssim_matches_skimage() -> None:
    rng = np.random.default_rng(0)
    refs = rng.integers(0, 255, (3, 1, 24, 24)).astype(np.uint8)
    query = (refs[1].astype(int) + rng.integers(-20, 20, (1, 24, 24))).clip(0, 255).astype(np.uint8)
    best = max_ssim(np.stack([query, refs[2]]), refs, 255.0)
    expected = max(
        structural_similarity(
            query[0].astype(float) / 255, r[0].astype(float) / 255, data_range=1.0,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        for r in refs
    )  # fmt: skip
    # skimage crops the border after filtering with a padded window, we use valid positions
    assert best[0] == pytest.approx(expected, abs=0.03)
    assert best[1] == pytest.approx(1.0, abs=1e-5)  # a crop that is in the references
