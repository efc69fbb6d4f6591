"""SimSearch core: cell-field painter, window features, search, simulated user, patch sets."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fishline.errors import InputError
from fishline.io import read_patch_set
from fishline.paint.cellfields import CellFieldSettings, paint_cell_field, paint_cell_fields
from fishline.schema import default, settings_as_config
from fishline.simsearch.annotations import check_annotations
from fishline.simsearch.cells import painted_cell_crops
from fishline.simsearch.channels import channel_mix, learn_channel_weights, reweight_channels
from fishline.simsearch.features import (
    FeatureExtractor,
    FeatureGrid,
    gaussian_kernel,
    grid_index,
    load_grid,
    save_grid,
)
from fishline.simsearch.images import load_image_set
from fishline.simsearch.patches import (
    clean_patches,
    cut_patch,
    noisy_patches,
    supervised_patches,
    write_patch_set,
)
from fishline.simsearch.search import (
    Searcher,
    background_candidates,
    nearest_prototype,
    propose,
    similarity_map,
)
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.simulate import (
    average_precision,
    choose_threshold,
    match_radius,
    match_ranked,
    near_truth,
    proposal_auc,
    simulate_annotations,
)
from fishline.simsearch.stages import check_channel_mode

torch.set_num_threads(2)
SMALL = CellFieldSettings(images=3, size=(192, 192), cells=(7, 9))
PATCH = (48, 48)
CLASSES = ["nuclear", "cytoplasmic"]
CLASSES3 = ["nuclear", "cytoplasmic", "absent"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cells")
    paint_cell_fields(SMALL, 3, folder)
    return load_image_set(folder / "sheet.tsv")


@pytest.fixture(scope="module")
def extractors():
    return {name: FeatureExtractor(name, PATCH, 2) for name in ("efficientnet_lite0", "resnet18")}


@pytest.fixture(scope="module")
def grids(demo, extractors):
    extractor = extractors["efficientnet_lite0"]
    return {name: extractor.image_grid(image) for name, image in demo.images.items()}


def test_painter_labels_and_compartments():
    rng = np.random.default_rng(5)
    image, nuclei, cells, table = paint_cell_field(rng, replace(SMALL, size=(256, 256)))
    assert image.shape == (2, 256, 256) and image.dtype == np.float32
    assert len(table) >= 7 and set(table["class"]) <= {"nuclear", "cytoplasmic", "absent"}
    for row in table.itertuples():
        assert nuclei[int(row.y), int(row.x)] == row.cell  # the truth point is in its nucleus
        nucleus = image[1][nuclei == row.cell].mean()
        cytoplasm = image[1][(cells == row.cell) & (nuclei == 0)].mean()
        if row._4 == "nuclear":
            assert nucleus > 2 * cytoplasm
        elif row._4 == "cytoplasmic":
            assert cytoplasm > 2 * nucleus
        else:  # absent: no GFP above the background offset (<= 0.06) and blur
            assert max(nucleus, cytoplasm) < 0.1


def test_painter_files_same_seed_same_bytes(tmp_path):
    settings = replace(SMALL, images=2, size=(96, 128), cells=(2, 3))
    cells = paint_cell_fields(settings, 11, tmp_path / "a")
    paint_cell_fields(settings, 11, tmp_path / "b")
    for name in ("sheet.tsv", "images/field000.tif", "images/field001.tif", "points/field001.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = paint_cell_fields(settings, 12, tmp_path / "c")
    assert not other[["x", "y"]].equals(cells[["x", "y"]])
    image_set = load_image_set(tmp_path / "a" / "sheet.tsv")
    assert image_set.channels == ["dna", "gfp"] and image_set.shape("field000") == (96, 128)
    truth = image_set.truth["field001"]
    assert len(truth) == (cells["image"] == "field001").sum()
    assert CellFieldSettings.from_config(default("simsearch.paint")) == CellFieldSettings()
    with pytest.raises(InputError, match=r"unknown key\(s\) \['colour'\]"):
        CellFieldSettings.from_config({**settings_as_config(settings), "colour": 1})
    with pytest.raises(InputError, match=r"\[simsearch.paint.cells\]: needs 0 < low <= high"):
        replace(settings, cells=(3, 2))
    with pytest.raises(InputError, match="classes must weigh"):
        replace(settings, classes={"mitotic": 1.0})


def test_channel_mix_and_kernel():
    np.testing.assert_array_equal(channel_mix(2), [[1, 0], [0, 1], [0.5, 0.5]])
    np.testing.assert_array_equal(channel_mix(1), [[1], [1], [1]])
    np.testing.assert_allclose(channel_mix(4)[0], [0.5, 0, 0, 0.5])
    square = gaussian_kernel((48, 48))  # sigma = half a cell: weights e^-2, 1, e^-2 per axis
    assert square[1, 1] == pytest.approx(1 / (1 + 2 * np.exp(-2)) ** 2)
    assert square[0, 1] == pytest.approx(np.exp(-2) / (1 + 2 * np.exp(-2)) ** 2)
    kernel = gaussian_kernel((48, 64))
    assert kernel.shape == (3, 4) and kernel.sum() == pytest.approx(1.0)
    assert kernel[1, 1] == kernel.max() and kernel[0, 0] == kernel.min()


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet18"])
def test_grid_matches_patch_vectors(demo, extractors, backbone):
    extractor = extractors[backbone]
    image = demo.images["field000"]
    grid = extractor.image_grid(image)
    assert grid.stride == pytest.approx(4.8) and grid.patch == PATCH
    assert grid.vectors.shape == (40, 40, extractor.dimension)  # ceil(192 / 4.8)
    assert grid.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(grid.vectors, axis=-1), 1.0, atol=1e-5)
    # patches cut at the grid windows nearest to the cells (where patch sets cut them)
    truth = demo.truth["field000"]
    spots = [grid_index(grid, x, y) for x, y in zip(truth["x"], truth["y"], strict=True)]
    patches = np.stack([cut_patch(image, grid.xs[j], grid.ys[i], PATCH) for i, j in spots])
    vectors = extractor.patch_vectors(patches)
    assert vectors.shape == (len(spots), extractor.dimension)
    cosines = np.array([vectors[k] @ grid.vectors[i, j] for k, (i, j) in enumerate(spots)])
    # a lone patch lacks its neighbours' context: close, but not equal (EfficientNet's
    # receptive field is wider; measured median 0.91-0.93, worst ~0.7 on these fields)
    assert np.median(cosines) > 0.9, cosines
    assert cosines.min() > (0.6 if backbone == "efficientnet_lite0" else 0.85), cosines
    # and its own window is more similar than the average window of the image
    assert np.median(cosines) > np.median(grid.vectors.reshape(-1, extractor.dimension) @ vectors.T)
    # uint8 patches give the same vectors as their float originals, up to quantisation
    as_bytes = extractor.patch_vectors(np.rint(patches * 255).astype(np.uint8))
    assert np.min(np.sum(as_bytes * vectors, axis=1)) > 0.99


def test_similarity_peaks_at_planted_copy(demo, extractors):
    source = demo.images["field001"]
    cells = demo.truth["field001"]
    # the cell farthest from the border, so its 48 px window holds it whole
    margin = np.minimum(cells[["x", "y"]], 192 - cells[["x", "y"]]).min(axis=1)
    truth = cells.loc[margin.idxmax()]
    left, top = int(truth.x) - 24, int(truth.y) - 24
    left, top = np.clip(left, 0, 192 - 48), np.clip(top, 0, 192 - 48)
    rng = np.random.default_rng(0)
    target = np.clip(0.03 + 0.01 * rng.standard_normal((2, 160, 200)), 0, 1).astype(np.float32)
    target[:, 90:138, 60:108] = source[:, top : top + 48, left : left + 48]  # centre (84, 114)
    for extractor in extractors.values():
        prototypes = extractor.prototype_vectors(
            source, {"x": left, "y": top, "width": 48, "height": 48}
        )
        assert prototypes.shape == (4, extractor.dimension)
        grid = extractor.image_grid(target)
        similarity = similarity_map(grid, prototypes)
        row, column = np.unravel_index(similarity.argmax(), similarity.shape)
        assert abs(grid.xs[column] - 84) <= 2 * grid.stride
        assert abs(grid.ys[row] - 114) <= 2 * grid.stride
        best = propose(grid, similarity, float(similarity.max()) - 1e-6)
        assert len(best) == 1


def test_prototype_and_weights_errors(demo, extractors, tmp_path):
    extractor = extractors["resnet18"]
    with pytest.raises(InputError, match="differs from the patch size"):
        extractor.prototype_vectors(demo.images["field000"], (0, 0, 40, 48))
    with pytest.raises(InputError, match="weights file not found"):
        FeatureExtractor("resnet18", PATCH, 2, weights=str(tmp_path / "none.pt"))
    with pytest.raises(InputError, match="unknown backbone"):
        FeatureExtractor("vgg", PATCH, 2)
    wide = FeatureExtractor("resnet18", (32, 48), 2)
    assert wide.prototype_vectors(demo.images["field000"], (10, 10, 48, 32)).shape == (2, 256)


def test_grid_save_load(tmp_path):
    grid = FeatureGrid(
        np.eye(3, dtype=np.float32)[None].repeat(2, 0),
        np.array([0.0, 4.8]),
        np.array([0.0, 4.8, 9.6]),
        4.8,
        (48, 48),
    )
    save_grid(tmp_path / "g.npz", grid)
    back = load_grid(tmp_path / "g.npz")
    np.testing.assert_array_equal(back.vectors, grid.vectors)
    assert back.stride == 4.8 and back.patch == (48, 48) and list(back.xs) == [0.0, 4.8, 9.6]
    assert grid_index(back, 5.0, 2.0) == (0, 1)
    (tmp_path / "bad.npz").write_text("no")
    with pytest.raises(InputError, match="cannot read feature grid"):
        load_grid(tmp_path / "bad.npz")


def _hand_grid() -> FeatureGrid:
    vectors = np.zeros((20, 20, 2), dtype=np.float32)
    return FeatureGrid(vectors, np.arange(20) * 2.0, np.arange(20) * 2.0, 2.0, (8, 8))


def test_propose_threshold_and_distance():
    grid = _hand_grid()
    similarity = np.zeros((20, 20), dtype=np.float32)
    similarity[5, 5], similarity[5, 6], similarity[5, 8] = 0.9, 0.8, 0.85
    similarity[15, 15] = 0.5
    found = propose(grid, similarity, 0.6)  # default min distance 4 px = 2 cells
    assert found[["x", "y"]].to_numpy().tolist() == [[10, 10], [16, 10]]
    np.testing.assert_allclose(found["score"], [0.9, 0.85])
    assert len(propose(grid, similarity, 0.4)) == 3
    assert propose(grid, similarity, 0.6, min_distance=8)[["x", "y"]].to_numpy().tolist() == [
        [10, 10]
    ]
    assert propose(grid, similarity, 0.95).empty


def test_searcher_caches_and_is_fast():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((214, 214, 80)).astype(np.float32)  # 1024 px at 4.8 px
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    axis = np.arange(214) * 4.8
    grid = FeatureGrid(vectors, axis, axis, 4.8, (48, 48))
    searcher = Searcher({"big": grid})
    prototypes = vectors[[10, 100], [20, 50]]
    first = searcher.proposals(prototypes, 0.2)
    started = time.perf_counter()
    again = searcher.proposals(prototypes, 0.25)
    assert time.perf_counter() - started < 0.05
    assert len(again) < len(first) and (again["score"] >= 0.25).all()
    top = first.head(2).sort_values("y")  # the prototypes' own windows score 1
    np.testing.assert_allclose(top["score"], 1.0, atol=1e-5)
    np.testing.assert_allclose(
        top[["x", "y"]].to_numpy(), [[20 * 4.8, 10 * 4.8], [50 * 4.8, 100 * 4.8]]
    )
    assert list(first.columns) == ["image", "x", "y", "score"]


def test_background_candidates_hand_case():
    vectors = np.zeros((10, 10, 2), dtype=np.float32)
    vectors[..., 0] = 1.0
    vectors[2, 2] = [0.6, 0.8]
    vectors[7, 7] = [0.0, 1.0]
    vectors[2, 7] = [0.8, 0.6]
    axis = np.arange(10) * 4.0
    grid = FeatureGrid(vectors, axis, axis, 4.0, (16, 16))
    exclude = pd.DataFrame({"image": ["a"], "x": [28.0], "y": [28.0]})  # the (7, 7) window
    hard, easy = background_candidates({"a": grid}, np.array([0.0, 1.0]), exclude, 2, 6.0, 0)
    assert hard[["x", "y"]].to_numpy().tolist() == [[8, 8], [28, 8]]  # 0.8 then 0.6
    np.testing.assert_allclose(hard["score"], [0.8, 0.6])
    assert len(easy) == 2 and (easy["score"] == 0).all()
    assert np.hypot(*(easy[["x", "y"]].to_numpy()[0] - easy[["x", "y"]].to_numpy()[1])) >= 6


def test_choose_threshold_hand_cases():
    flags = np.array([True, True, False, True, False, False])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert choose_threshold(flags, scores, 0) == 0.8
    assert choose_threshold(flags, scores, 1) == 0.6
    assert choose_threshold(flags, scores, 5) == 0.4
    assert choose_threshold(~flags, scores, 0) > 0.9


def test_simulated_user_and_patch_sets(demo, extractors, grids, tmp_path):
    extractor = extractors["efficientnet_lite0"]
    displayed = ["field000", "field001"]
    data = simulate_annotations(demo, grids, extractor, displayed, CLASSES, 2, 2, 4, 7, "demo")
    shapes = {name: demo.shape(name) for name in demo.names}
    check_annotations(data, "again", shapes, CLASSES)
    assert data["stride"] == pytest.approx(4.8) and data["patch"] == {"width": 48, "height": 48}
    radius = match_radius(4.8)
    truth = pd.concat([demo.truth[n].assign(image=n) for n in displayed], ignore_index=True)
    searcher = Searcher({name: grids[name] for name in displayed})
    exact = 0
    for entry in data["classes"]:
        mine = truth[truth["class"] == entry["name"]]
        vectors = np.concatenate(
            [extractor.prototype_vectors(demo.images[b["image"]], b) for b in entry["prototypes"]]
        )
        peaks = searcher.peaks(vectors)
        available = int((~near_truth(peaks, mine, radius)).sum())
        assert len(entry["prototypes"]) == 2
        assert len(entry["negatives"]) == min(2, available)  # exactly N when possible
        exact += available >= 2
        positives = pd.DataFrame(entry["positives"])
        negatives = pd.DataFrame(entry["negatives"])
        assert near_truth(positives, mine, radius).all()
        assert not near_truth(negatives, mine, radius).any()
        assert (negatives["score"] >= entry["threshold"]).all()
    assert exact >= 1
    assert len(data["background"]["proposed"]) == 8
    again = simulate_annotations(demo, grids, extractor, displayed, CLASSES, 2, 2, 4, 7, "demo")
    assert again == data
    # thresholds hold for the features they were chosen on: a run with others is refused
    assert data["channel_mode"] == extractor.channel_mode
    assert data["channel_weights"] == pytest.approx([0.5, 0.5])
    search = SearchSettings(channels=extractor.channel_mode, channel_weights=(2, 2))
    check_channel_mode(data, search, 2, "a.json")
    other = "separate" if extractor.channel_mode == "mixed" else "mixed"
    for changed in ({"channels": other}, {"channel_weights": (1, 3)}):
        with pytest.raises(InputError, match=r"a\.json.*channel mode"):
            check_channel_mode(data, replace(search, **changed), 2, "a.json")

    stack, table = clean_patches(demo, data)
    assert stack.dtype == np.uint8 and stack.shape == (len(table), 2, 48, 48)
    assert list(table.columns) == ["index", "image", "x", "y", "label", "role", "negative_of"]
    negatives = table[table["role"] == "negative"]
    assert (negatives["label"] == "background").all()
    expected = sorted(e["name"] for e in data["classes"] for _ in e["negatives"])
    assert sorted(negatives["negative_of"]) == expected
    positives = table[table["role"] == "positive"]
    assert len(positives) == sum(len(e["positives"]) for e in data["classes"])
    flagged = len(data["background"]["not_background"])
    assert (table["role"] == "background").sum() == 8 - flagged
    assert (table.loc[table["role"] == "prototype", "label"].value_counts() == 2).all()
    write_patch_set(stack, table, demo.channels, tmp_path / "c.tif", tmp_path / "c.parquet")
    back, back_table = read_patch_set(tmp_path / "c.tif", tmp_path / "c.parquet")
    np.testing.assert_array_equal(back, stack)
    assert back_table.equals(table)

    noisy, noisy_table = noisy_patches(demo, grids, extractor, data, 4, 1)
    assert set(noisy_table["image"]) <= {"field002"} and len(noisy) == len(noisy_table)
    assert set(noisy_table["label"]) <= {*CLASSES, "background"}
    assert (noisy_table["role"] == "background").sum() == 4

    full, full_table = supervised_patches(demo, ["field002"], CLASSES, PATCH, 3, 1)
    field = demo.truth["field002"]
    assert (full_table["role"] == "truth").sum() == len(field)
    expected = field["class"].where(field["class"].isin(CLASSES), "background").tolist()
    assert full_table.loc[full_table["role"] == "truth", "label"].tolist() == expected
    assert (full_table["role"] == "background").sum() == 3 and full.shape[1:] == (2, 48, 48)
    shifted = full_table[full_table["role"] == "off_centre"]
    targets = field[field["class"].isin(CLASSES)]
    assert 0 < len(shifted) <= len(targets) and (shifted["label"] == "background").all()
    gaps = np.hypot(
        shifted["x"].to_numpy()[:, None] - field["x"].to_numpy()[None],
        shifted["y"].to_numpy()[:, None] - field["y"].to_numpy()[None],
    ).min(axis=1)
    assert (gaps >= 0.4 * 48 - 0.1).all() and (gaps <= 0.7 * 48 + 0.1).all()


def test_cut_patch_hand_cases():
    image = np.arange(2 * 8 * 10, dtype=np.float32).reshape(2, 8, 10)
    patch = cut_patch(image, 2, 3, (4, 4))  # rows 1..4, columns 0..3
    np.testing.assert_array_equal(patch, image[:, 1:5, 0:4])
    corner = cut_patch(image, 0, 0, (4, 4))  # rows -2..1 reflect to 2, 1, 0, 1
    np.testing.assert_array_equal(corner[0, :, 0], image[0, [2, 1, 0, 1], 2])
    assert cut_patch(image, 9, 7, (5, 3)).shape == (2, 5, 3)


def test_average_precision_and_matching():
    assert average_precision(np.array([True, True, False]), 2) == 1.0
    # hits at ranks 1 and 3 of 3 truths: (1/1 + 2/3) / 3
    assert average_precision(np.array([True, False, True]), 3) == pytest.approx(5 / 9)
    truth = pd.DataFrame({"image": ["a", "a"], "x": [10.0, 50.0], "y": [10.0, 10.0]})
    peaks = pd.DataFrame(
        {"image": ["a", "a", "a", "b"], "x": [12.0, 11.0, 80.0, 10.0], "y": [10.0] * 4}
    )
    # the second peak near (10, 10) finds it taken; (80, 10) is too far; image b has none
    assert match_ranked(peaks, truth, 5.0).tolist() == [True, False, False, False]


def test_proposal_auc_range(demo, grids):
    auc = proposal_auc(demo, grids, CLASSES, 2, 0)
    assert 0.0 <= auc <= 1.0
    assert auc == proposal_auc(demo, grids, CLASSES, 2, 0)
    with pytest.raises(InputError, match="only"):
        proposal_auc(demo, grids, ["cytoplasmic"], 100, 0)


def test_oversampled_grid_agrees(demo):
    """Shifted passes (stride 8) and plain interpolation (stride 16) give nearly one grid."""
    image = demo.images["field002"][:, :96, :128]
    plain = FeatureExtractor("resnet18", PATCH, 2).image_grid(image)
    sharp = FeatureExtractor("resnet18", PATCH, 2, oversample=2).image_grid(image)
    assert sharp.vectors.shape == plain.vectors.shape == (20, 27, 256)
    cosines = np.sum(sharp.vectors * plain.vectors, axis=-1)
    assert np.median(cosines) > 0.97
    with pytest.raises(InputError, match="must divide"):
        FeatureExtractor("resnet18", PATCH, 2, oversample=3)


def test_embed_crops_of_any_size_without_their_margin(extractors):
    """One vector per crop whatever its size; background added evenly around a crop does not
    change its vector (crops are centred on a blank canvas, never mirrored)."""
    extractor = extractors["efficientnet_lite0"]
    rng = np.random.default_rng(0)
    crops = [rng.random((2, h, w), dtype=np.float32) for h, w in ((11, 11), (40, 30), (115, 90))]
    vectors = extractor.embed(crops)
    assert vectors.shape == (3, extractor.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cell = rng.random((2, 30, 30), dtype=np.float32)
    padded = np.pad(cell, ((0, 0), (10, 10), (10, 10)))
    as_bytes = np.rint(cell * 255).astype(np.uint8)
    same = extractor.embed([cell, padded, as_bytes])
    np.testing.assert_allclose(same[0], same[1], atol=1e-5)
    np.testing.assert_allclose(same[0], same[2], atol=1e-2)
    assert float(same[0] @ vectors[1]) < 0.999  # different crops, different vectors
    with pytest.raises(InputError, match="crop 0"):
        extractor.embed([np.zeros((3, 20, 20))])


@pytest.fixture(scope="module")
def painted_cells() -> tuple[list[np.ndarray], np.ndarray]:
    """Masked crops (any size) of painted cells with nuclear / cytoplasmic / absent GFP."""
    settings = CellFieldSettings(
        size=(192, 192), cells=(10, 12), classes={"nuclear": 1, "cytoplasmic": 1, "absent": 1}
    )
    return painted_cell_crops(settings, 6, 1)


def _five_per_class(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(classes == name), 5, replace=False) for name in CLASSES3]
    )
    return chosen, np.setdiff1d(np.arange(len(classes)), chosen)


def test_cells_called_from_five_prototypes_per_class(extractors, painted_cells):
    """Painted cells (nuclear / cytoplasmic / absent GFP), masked crops of any size, 5
    prototypes per class: nearest-prototype calls beat chance by a margin that shuffled
    prototype labels do not reach."""
    crops, classes = painted_cells
    vectors = extractors["efficientnet_lite0"].embed(crops)
    chosen, rest = _five_per_class(classes)
    rng = np.random.default_rng(2)
    calls = nearest_prototype(vectors[rest], vectors[chosen], classes[chosen])
    assert list(calls.columns) == ["predicted_class", "certainty"] + [
        f"p_{name}" for name in sorted(CLASSES3)
    ]
    assert calls["certainty"].between(0, 1).all()
    accuracy = (calls["predicted_class"].to_numpy() == classes[rest]).mean()
    shuffled = nearest_prototype(vectors[rest], vectors[chosen], rng.permutation(classes[chosen]))
    assert accuracy >= 0.75
    assert accuracy > (shuffled["predicted_class"].to_numpy() == classes[rest]).mean() + 0.25


def test_cell_classifier_learns_from_examples_and_leaves_torch_settings(extractors, painted_cells):
    from fishline.simsearch.cells import CellClassifier

    crops, classes = painted_cells
    chosen, rest = _five_per_class(classes)
    examples, others = [crops[i] for i in chosen], [crops[i] for i in rest]
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    state = torch.random.get_rng_state()
    classifier = CellClassifier(extractors["efficientnet_lite0"])
    classifier.fit(examples, classes[chosen], unlabelled=others)
    calls = classifier.predict(others)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    assert torch.equal(torch.random.get_rng_state(), state)
    # 15 examples x 4 rotations, plus the cells the spread labels hold confidently
    assert len(classifier.prototypes) == 60 + classifier.pseudo_labelled
    assert 0 < classifier.pseudo_labelled <= len(others)
    pseudo = classifier.labels[60:]
    joined = classifier.prototypes[60:]
    vectors = extractors["efficientnet_lite0"].embed(others)
    rows = [int(np.argmax(vectors @ vector)) for vector in joined]  # which cell joined
    assert (pseudo == classes[rest][rows]).mean() >= 0.8  # the pseudo-labels are mostly right
    accuracy = (calls["predicted_class"].to_numpy() == classes[rest]).mean()
    shuffled = CellClassifier(extractors["efficientnet_lite0"]).fit(
        examples, np.random.default_rng(3).permutation(classes[chosen])
    )
    chance = (shuffled.predict(others)["predicted_class"].to_numpy() == classes[rest]).mean()
    assert accuracy >= 0.75 and accuracy > chance + 0.25
    with pytest.raises(InputError, match="3 labels for 2 crops"):
        CellClassifier(extractors["efficientnet_lite0"]).fit(examples[:2], classes[:3])


def test_linear_head_on_separable_vectors_and_painted_cells(extractors, painted_cells):
    from fishline.simsearch.cells import CellClassifier

    # Hand-made vectors: class a along x, class b along y; a cell at 45 degrees + a bit of x.
    classifier = CellClassifier(extractors["efficientnet_lite0"], head="linear")
    d = extractors["efficientnet_lite0"].dimension
    vectors = np.zeros((4, d), np.float32)
    vectors[0, 0] = vectors[1, 0] = vectors[2, 1] = vectors[3, 1] = 1.0
    vectors[1, 2] = vectors[3, 2] = 0.2
    classifier.fit_vectors(vectors, ["a", "a", "b", "b"])
    probe = np.zeros((2, d), np.float32)
    probe[0, 0], probe[1, :2] = 1.0, [0.6, 0.5]
    calls = classifier.predict_vectors(probe)
    assert calls["predicted_class"].tolist() == ["a", "a"]
    assert list(calls.columns) == ["predicted_class", "certainty", "p_a", "p_b"]
    assert calls.loc[0, "certainty"] > calls.loc[1, "certainty"]
    assert np.allclose(calls[["p_a", "p_b"]].sum(axis=1), 1.0)
    # On painted cells from 5 examples per class: right, and far above shuffled labels.
    crops, classes = painted_cells
    chosen, rest = _five_per_class(classes)
    examples, others = [crops[i] for i in chosen], [crops[i] for i in rest]
    fitted = CellClassifier(extractors["efficientnet_lite0"], head="linear")
    fitted.fit(examples, classes[chosen])
    accuracy = (fitted.predict(others)["predicted_class"].to_numpy() == classes[rest]).mean()
    shuffled = CellClassifier(extractors["efficientnet_lite0"], head="linear").fit(
        examples, np.random.default_rng(3).permutation(classes[chosen])
    )
    chance = (shuffled.predict(others)["predicted_class"].to_numpy() == classes[rest]).mean()
    assert accuracy >= 0.75 and accuracy > chance + 0.25
    with pytest.raises(InputError, match="head must be one of"):
        CellClassifier(extractors["efficientnet_lite0"], head="mlp")


def test_prototype_curve_scores_every_draw_on_the_other_cells(extractors, painted_cells):
    from fishline.simsearch.cells import (
        CellClassifier,
        curve_summary,
        embed_views,
        example_draws,
        prototype_curve,
    )

    crops, classes = painted_cells
    extractor = extractors["efficientnet_lite0"]
    views = embed_views(extractor, crops)
    classifier = CellClassifier(extractor)
    curve, calls = prototype_curve(classifier, views, classes, [1, 5], 3, seed=0)
    assert len(curve) == 2 * 3 * 2  # counts x draws x strategies
    assert set(curve["head"]) == {"prototypes"}
    assert set(curve["cells_called"]) == {len(classes) - 3, len(classes) - 15}
    assert (curve.loc[curve["strategy"] == "examples", "pseudo_labelled"] == 0).all()
    learned = curve.loc[curve["strategy"] == "self-learning"]
    assert (learned["pseudo_labelled"] >= 1).all()
    assert (learned["pseudo_labelled"] <= learned["cells_called"]).all()
    five = curve[curve["prototypes"] == 5]
    assert five["accuracy"].mean() >= 0.75  # chance: 1/3
    assert len(calls) == len(classes) - 15 and calls["certainty"].between(0, 1).all()
    again, _ = prototype_curve(classifier, views, classes, [1, 5], 3, seed=0)
    pd.testing.assert_frame_equal(curve, again)  # seeded draws
    # only the examples' rotations are read (the workflow rotates no other cell)
    examples = np.unique(
        np.concatenate([chosen for *_, chosen in example_draws(classes, [1, 5], 3, 0)])
    )
    sparse = views.copy()
    sparse[np.setdiff1d(np.arange(len(classes)), examples), 1:] = np.nan
    assert len(examples) < len(classes)
    pd.testing.assert_frame_equal(
        prototype_curve(classifier, sparse, classes, [1, 5], 3, 0)[0], curve
    )
    summary = curve_summary(curve, 3)
    assert list(summary["prototypes"]) == [1, 1, 5, 5] and set(summary["draws"]) == {3}
    assert summary["chance"].iloc[0] == "33.3 %"
    shuffled = np.random.default_rng(0).permutation(classes)
    worse, _ = prototype_curve(classifier, views, shuffled, [5], 3, seed=0)
    assert worse["accuracy"].mean() < five["accuracy"].mean() - 0.25
    with pytest.raises(InputError, match="more than 200 cells of each class"):
        prototype_curve(classifier, views, classes, [200], 1, seed=0)


def test_window_crops_centre_each_cell_without_mirroring(tmp_path):
    from fishline.simsearch.cells import window_crops

    paint_cell_fields(CellFieldSettings(images=1, size=(96, 96), cells=(3, 4)), 5, tmp_path)
    image_set = load_image_set(tmp_path / "sheet.tsv")
    name = image_set.names[0]
    truth = image_set.truth[name]
    crops, table = window_crops(image_set, 32)
    assert len(crops) == len(truth) and list(table["class"]) == list(truth["class"])
    assert all(crop.shape == (2, 32, 32) and crop.dtype == np.float32 for crop in crops)
    image = image_set.images[name]
    x, y = round(truth["x"].iloc[0]), round(truth["y"].iloc[0])
    assert crops[0][:, 16, 16] == pytest.approx(image[:, y, x])
    image_set.truth[name] = pd.DataFrame({"x": [1.0], "y": [2.0], "class": ["nuclear"]})
    corner, _ = window_crops(image_set, 32)
    assert (corner[0][:, :14, :] == 0).all() and (corner[0][:, :, :15] == 0).all()
    assert corner[0][:, 14:, 15:] == pytest.approx(image[:, :18, :17])


def test_separate_channels_give_each_channel_its_own_block(painted_cells):
    """With channels run one by one, a change in the GFP channel leaves the DNA block of the
    vector as it was, weights set each block's share, and bad weights are refused."""
    crops, _ = painted_cells
    separate = FeatureExtractor("efficientnet_lite0", PATCH, 2, channels="separate")
    assert separate.dimension == 2 * 80
    crop = np.asarray(crops[0], np.float32)
    dimmed = crop.copy()
    dimmed[1] *= 0.2  # GFP only
    first, second = separate.embed([crop, dimmed])
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert first[:80] == pytest.approx(second[:80], abs=1e-5)  # DNA block unchanged
    assert not np.allclose(first[80:], second[80:], atol=1e-3)
    gfp_heavy = FeatureExtractor(
        "efficientnet_lite0", PATCH, 2, channels="separate", channel_weights=[1, 3]
    )
    vector = gfp_heavy.embed([crop])[0]
    assert np.sum(vector[80:] ** 2) == pytest.approx(0.75, abs=1e-4)  # its share of the cosine
    for weights in ([1.0], [0.0, 0.0], [-1.0, 2.0]):
        with pytest.raises(InputError, match="channel_weights"):
            FeatureExtractor("efficientnet_lite0", PATCH, 2, channels="separate",
                             channel_weights=weights)  # fmt: skip
    with pytest.raises(InputError, match="channels"):
        FeatureExtractor("efficientnet_lite0", PATCH, 2, channels="rgb")


def test_separate_channels_call_painted_cells_better_than_mixed():
    """On harder painted cells (the demo's painter, config/config.yaml: dim, partial, touching,
    blurred), whose class is where the GFP sits, the GFP channel seen on its own gives the
    nearest-prototype calls more than the mixed RGB input does (5 per class)."""

    from fishline.config import load_config

    root = Path(__file__).resolve().parents[1]
    paint = load_config(root / "config/config.yaml")["simsearch"]["paint"]
    settings = replace(
        CellFieldSettings.from_config(paint),
        size=(256, 256),
        classes={"nuclear": 1, "cytoplasmic": 1, "absent": 1},
    )
    crops, classes = painted_cell_crops(settings, 4, 1)
    chosen, rest = _five_per_class(classes)
    accuracy = {}
    for mode in ("mixed", "separate"):
        vectors = FeatureExtractor("efficientnet_lite0", PATCH, 2, channels=mode).embed(crops)
        calls = nearest_prototype(vectors[rest], vectors[chosen], classes[chosen])
        accuracy[mode] = (calls["predicted_class"].to_numpy() == classes[rest]).mean()
    assert accuracy["separate"] >= accuracy["mixed"] + 0.05
    assert accuracy["separate"] >= 0.85


def test_reweighting_equals_extracting_at_the_new_weights(painted_cells):
    """Separate-channel vectors reweighted afterwards are the vectors the backbone gives at
    those weights, so learned weights never need the images again."""
    crops = painted_cells[0][:4]
    equal = FeatureExtractor("efficientnet_lite0", PATCH, 2, channels="separate")
    heavy = FeatureExtractor(
        "efficientnet_lite0", PATCH, 2, channels="separate", channel_weights=[1, 4]
    )
    moved = reweight_channels(equal.embed(crops), equal.channel_weights, [1, 4])
    np.testing.assert_allclose(moved, heavy.embed(crops), atol=1e-5)
    with pytest.raises(InputError, match="weight 0"):
        reweight_channels(moved, [0.0, 1.0], [1, 1])


def test_spread_labels_follow_the_manifold_of_each_class():
    """Two classes along two arcs (hand-made 2-d points, one labelled end each): the nearest
    labelled point calls the far end of an arc wrongly, the spread labels follow the arcs."""
    from fishline.simsearch.cells import spread_labels

    angles = np.linspace(0, np.pi, 30)
    upper = np.column_stack([np.cos(angles), np.sin(angles)])
    lower = np.column_stack([1 - np.cos(angles), 0.5 - np.sin(angles)])
    labelled = np.stack([upper[0], lower[0]])
    unlabelled = np.concatenate([upper[1:], lower[1:]])
    truth = np.repeat(["up", "down"], 29)
    # 29 hops to the far end: a vector takes 0.9 of its neighbours' label per step
    pseudo, mass = spread_labels(labelled, ["up", "down"], unlabelled, neighbours=3, alpha=0.9)
    nearest = np.where(
        np.linalg.norm(unlabelled - labelled[0], axis=1)
        < np.linalg.norm(unlabelled - labelled[1], axis=1),
        "up",
        "down",
    )
    assert (nearest == truth).mean() < 0.8
    assert (pseudo == truth).all()
    assert ((mass > 0.5) & (mass <= 1.0)).all()


def test_learned_channel_weights_pick_the_channel_that_carries_the_class():
    """Hand-made two-channel vectors: the class is in one channel's block, the other block is
    noise shared by nothing. The learned weighting goes to the informative channel (either
    way round), flagged negatives that look like a class in that channel count against it,
    and a single class without negatives leaves the weights equal."""
    rng = np.random.default_rng(0)
    d, per_class = 16, 6
    centres = rng.normal(size=(3, d))
    labels = np.repeat(["a", "b", "c"], per_class)
    signal = centres[np.repeat(np.arange(3), per_class)] + 0.3 * rng.normal(size=(18, d))
    noise = rng.normal(size=(18, d))

    def vectors(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        blocks = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in (first, second)]
        return np.concatenate(blocks, axis=1) * np.sqrt(0.5)

    informative_second = learn_channel_weights(vectors(noise, signal), labels, [0.5, 0.5])
    informative_first = learn_channel_weights(vectors(signal, noise), labels, [0.5, 0.5])
    assert informative_second[1] > 0.9 and informative_first[0] > 0.9
    assert informative_second.sum() == pytest.approx(1.0)
    single = learn_channel_weights(
        vectors(noise, signal)[:per_class], labels[:per_class], [0.5, 0.5]
    )
    np.testing.assert_allclose(single, [0.5, 0.5])
    # views of one example (e.g. rotations) are never paired: one example per class is equal
    views = np.repeat(vectors(noise, signal)[[0, per_class, 2 * per_class]], 4, axis=0)
    one_each = learn_channel_weights(
        views, np.repeat(["a", "b", "c"], 4), [0.5, 0.5], groups=np.repeat(np.arange(3), 4)
    )
    np.testing.assert_allclose(one_each, [0.5, 0.5])
    # one class's own negatives alike in the first channel: that channel is no help there
    negatives = vectors(signal[:per_class], rng.normal(size=(per_class, d)))
    with_negatives = learn_channel_weights(
        vectors(signal, noise)[:per_class], labels[:per_class], [0.5, 0.5],
        negatives, ["a"] * per_class,
    )  # fmt: skip
    assert with_negatives[0] < 0.5


def test_cell_classifier_with_learned_weights_calls_painted_cells(painted_cells):
    from fishline.simsearch.cells import CellClassifier

    crops, classes = painted_cells
    chosen, rest = _five_per_class(classes)
    examples, others = [crops[i] for i in chosen], [crops[i] for i in rest]
    extractor = FeatureExtractor("efficientnet_lite0", PATCH, 2, channels="separate")
    fitted = CellClassifier(extractor, learn_weights=True).fit(examples, classes[chosen])
    assert fitted.channel_weights.sum() == pytest.approx(1.0)
    assert fitted.channel_weights[1] > 0.5  # the class is where the GFP sits
    accuracy = (fitted.predict(others)["predicted_class"].to_numpy() == classes[rest]).mean()
    assert accuracy >= 0.85
    with pytest.raises(InputError, match="learn_weights"):
        CellClassifier(FeatureExtractor("efficientnet_lite0", PATCH, 2), learn_weights=True)


def test_painter_draws_do_not_depend_on_the_order_of_the_class_weights():
    """The validated config sorts its keys and the schema default does not: both must paint
    the same cells, so a notebook reproduces what the workflow painted."""
    written = replace(SMALL, classes={"nuclear": 0.4, "cytoplasmic": 0.4, "absent": 0.2})
    reordered = replace(written, classes={"absent": 0.2, "cytoplasmic": 0.4, "nuclear": 0.4})
    first = paint_cell_field(np.random.default_rng(4), written)
    second = paint_cell_field(np.random.default_rng(4), reordered)
    assert np.array_equal(first[0], second[0])
    assert first[3]["class"].tolist() == second[3]["class"].tolist()
