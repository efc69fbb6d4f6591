"""One function per SimSearch workflow rule: read the rule's inputs, call the library, write
its outputs atomically. Plain values and paths in, so tests call them without Snakemake.

Each stage imports the library parts it uses itself: every SimSearch job imports this module,
which takes 0.4 s so (torch only where features are computed or a network trained), 1.6 s
with the feature extractor imported at the top and 4.7 s with everything there (torch,
matplotlib, scikit-learn; 2-core EPYC without AMX).
About 740 lines: one function per SimSearch rule (16), so a rule's code is found here.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_folder, atomic_outputs, read_patch_set, write_image
from fishline.logging import get_logger
from fishline.simsearch.annotations import read_annotations, write_annotations
from fishline.simsearch.channels import normalised_channel_weights
from fishline.simsearch.images import ImageSet, channel_correlation, load_image_set, split_names
from fishline.simsearch.settings import (
    CellCallSettings,
    DetectSettings,
    SearchSettings,
    TrainSettings,
)

if TYPE_CHECKING:  # torch: imported by the stages that compute features only
    from fishline.simsearch.features import FeatureExtractor, FeatureGrid

LOG = get_logger("simsearch")


def extractor_for(
    search: SearchSettings, channels: int, seed: int, device: str = "cpu"
) -> FeatureExtractor:
    """The feature network the search settings name."""
    from fishline.simsearch.features import FeatureExtractor

    patch, stride = search.geometry()
    return FeatureExtractor(
        search.backbone,
        patch,
        channels,
        weights=search.weights,
        seed=seed,
        device=device,
        stride=stride,
        channels=search.channels,
        channel_weights=search.channel_weights,
    )


def roles_of(image_set: ImageSet, roles: Mapping[str, Any]) -> dict[str, list[str]]:
    """Displayed, noisy and test image names of a sheet (see ``split_names``)."""
    return split_names(image_set.names, roles["displayed"], roles["test"], image_set.sheet)


@dataclass(frozen=True)
class SheetImages:
    """A SimSearch sheet as a stage reads it: its images, with ``channels`` kept (all when
    None), and the ``roles`` (``displayed`` and ``test``: counts or names, the settings
    ``simsearch.displayed`` and ``simsearch.test``) that split them."""

    sheet: str
    roles: Mapping[str, Any]
    channels: list[str] | None = None

    def load(self, channels: list[str] | None = None) -> tuple[ImageSet, dict[str, list[str]]]:
        """The image set (with ``channels`` instead of :attr:`channels` when given) and its
        displayed, noisy and test image names."""
        image_set = load_image_set(self.sheet, self.channels if channels is None else channels)
        return image_set, roles_of(image_set, self.roles)


def compute_features(
    sheet: str,
    channels: list[str] | None,
    search: SearchSettings,
    out_dir: str,
    device: str,
    threads: int,
    seed: int,
) -> None:
    """Cache the search features of every image (one ``<image>.npz`` each) in ``out_dir``.

    Written to a sibling folder first and renamed, so a killed job leaves no partial cache.
    """
    from fishline.simsearch.features import save_grid
    from fishline.train.loop import setup_device

    torch_device = setup_device(device, threads, seed)
    image_set = load_image_set(sheet, channels)
    extractor = extractor_for(search, len(image_set.channels), seed, str(torch_device))
    with atomic_folder(out_dir) as temp:
        for name in image_set.names:
            grid = extractor.image_grid(image_set.images[name])
            save_grid(temp / f"{name}.npz", grid)
            rows, columns, depth = grid.vectors.shape
            LOG.info("features of %s: %d x %d windows of %d-d", name, rows, columns, depth)


def load_grids(features: str, names: Sequence[str]) -> dict[str, FeatureGrid]:
    """Cached feature grids of ``names`` (an error names a missing image)."""
    from fishline.simsearch.features import load_grid

    grids = {}
    for name in names:
        path = Path(features) / f"{name}.npz"
        if not path.is_file():
            raise InputError(features, f"no cached features for image '{name}'")
        grids[name] = load_grid(path)
    return grids


def check_channel_mode(
    annotations: Mapping[str, Any], search: SearchSettings, channels: int, path: str
) -> None:
    """The thresholds of ``annotations`` hold for the features they were chosen on only: the
    run's channel mode and weights must be theirs (files that do not say are not checked)."""
    mode = annotations.get("channel_mode")
    if mode is None:
        return
    weights = normalised_channel_weights(annotations.get("channel_weights"), channels)
    wanted = normalised_channel_weights(search.channel_weights, channels)
    if mode != search.channels or not np.allclose(weights, wanted, atol=1e-4):
        raise InputError(
            path,
            f"thresholds were chosen with channel mode {mode} (weights {weights.round(3)}) but "
            f"simsearch.search has channels {search.channels} (weights {wanted.round(3)})",
            item="channel_mode",
        )


def _checked_annotations(
    path: str,
    image_set: ImageSet,
    classes: list[str] | None,
    search: SearchSettings | None = None,
) -> dict[str, Any]:
    """The annotations file, checked against the sheet's images, the classes, the channels
    and (with ``search``) the patch size, backbone and channel mode the features were made with."""
    shapes = {name: image_set.shape(name) for name in image_set.names}
    annotations = read_annotations(path, shapes, classes)
    if search is not None:
        patch, _ = search.geometry()
        drawn = (annotations["patch"]["height"], annotations["patch"]["width"])
        if drawn != patch:
            raise InputError(
                path,
                f"prototypes are {drawn[1]} x {drawn[0]} px but simsearch.search.patch is "
                f"{patch[1]}: set it to the drawn size (the features depend on it)",
                item="patch",
            )
        if annotations.get("backbone", search.backbone) != search.backbone:
            raise InputError(
                path,
                f"thresholds were chosen with backbone {annotations['backbone']} but "
                f"simsearch.search.backbone is {search.backbone}",
                item="backbone",
            )
        check_channel_mode(annotations, search, len(image_set.channels), path)
    if annotations["channels"] != image_set.channels:
        raise InputError(
            path,
            f"made with channels {annotations['channels']}, but the run uses "
            f"{image_set.channels} (simsearch.channels)",
            item="channels",
        )
    return annotations


def _simulated_annotations(
    image_set: ImageSet,
    features: str,
    displayed: list[str],
    classes: list[str],
    user: Mapping[str, Any],
    search: SearchSettings,
    seed: int,
) -> dict[str, Any]:
    """The simulated user's annotations (``user``: prototypes P, negatives N, background)."""
    from fishline.simsearch.simulate import simulate_annotations

    return simulate_annotations(
        image_set,
        load_grids(features, displayed),
        extractor_for(search, len(image_set.channels), seed),
        displayed,
        list(classes),
        user["prototypes"],
        user["negatives"],
        user["background"],
        seed,
        image_set.sheet,
    )


def simulate_user(
    images: SheetImages,
    features: str,
    classes: list[str],
    user: Mapping[str, Any],
    search: SearchSettings,
    seed: int,
    out: str,
) -> dict[str, Any]:
    """Annotations of the simulated user (P prototypes, N negatives per class) as JSON."""
    image_set, split = images.load()
    displayed = split["displayed"]
    annotations = _simulated_annotations(
        image_set, features, displayed, classes, user, search, seed
    )
    write_annotations(out, annotations)
    return annotations


def _patch_sets(
    image_set: ImageSet,
    features: str,
    annotations: dict[str, Any],
    names: list[str],
    noisy: Mapping[str, Any],
    search: SearchSettings,
    seed: int,
) -> tuple[tuple[np.ndarray, pd.DataFrame], tuple[np.ndarray, pd.DataFrame]]:
    """(clean, noisy) patch sets of an annotation: marked patches and the pseudo-labelled
    patches of the images ``names`` (not displayed)."""
    from fishline.simsearch.patches import clean_patches, noisy_patches

    clean = clean_patches(image_set, annotations)
    extractor = extractor_for(search, len(image_set.channels), seed)
    # The held-out test images must not give noisy patches: keep displayed + ``names`` only.
    unseen = ImageSet(
        image_set.sheet,
        image_set.channels,
        {
            name: image
            for name, image in image_set.images.items()
            if name in names or name in annotations["displayed"]
        },
        image_set.scaling,
        image_set.truth,
    )
    pseudo = noisy_patches(
        unseen,
        load_grids(features, names),
        extractor,
        annotations,
        noisy["background_per_image"],
        seed,
    )
    LOG.info("%d clean and %d noisy patches", len(clean[0]), len(pseudo[0]))
    return clean, pseudo


def annotated_patches(
    images: SheetImages,
    features: str,
    annotations: str,
    classes: list[str],
    noisy: Mapping[str, Any],
    search: SearchSettings,
    seed: int,
    outputs: Mapping[str, str],
) -> None:
    """Clean (marked) and noisy (searched on the images not displayed) patch sets; the
    channels are the annotations' (``images.channels`` is not used)."""
    from fishline.simsearch.patches import write_patch_set

    image_set, _ = images.load()
    marked = _checked_annotations(annotations, image_set, list(classes), search)
    image_set, split = images.load(marked["channels"])
    names = [
        name
        for name in image_set.names
        if name not in marked["displayed"] and name not in split["test"]
    ]
    clean, pseudo = _patch_sets(image_set, features, marked, names, noisy, search, seed)
    write_patch_set(*clean, image_set.channels, outputs["clean_stack"], outputs["clean_table"])
    write_patch_set(*pseudo, image_set.channels, outputs["noisy_stack"], outputs["noisy_table"])


def supervised_patch_set(
    images: SheetImages,
    classes: list[str],
    search: SearchSettings,
    noisy: Mapping[str, Any],
    seed: int,
    stack: str,
    table: str,
) -> None:
    """Every truth object of the training images (displayed + noisy): the supervised baseline."""
    from fishline.simsearch.patches import supervised_patches, write_patch_set

    image_set, split = images.load()
    patch, _ = search.geometry()
    patches = supervised_patches(
        image_set,
        split["displayed"] + split["noisy"],
        list(classes),
        patch,
        noisy["background_per_image"],
        seed,
    )
    LOG.info("%d supervised patches", len(patches[0]))
    write_patch_set(*patches, image_set.channels, stack, table)


def train_model(
    inputs: Mapping[str, str],
    strategy: str,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    threads: int,
    model: str,
    history: str,
) -> dict[str, Any]:
    """Train one strategy on its clean (and, when it self-learns, noisy) patch sets;
    ``settings``: the ``simsearch.train`` block."""
    from fishline.simsearch.train import train_simsearch

    clean = read_patch_set(inputs["clean_stack"], inputs["clean_table"])
    noisy = None
    if strategy.endswith("selflearn"):
        noisy = read_patch_set(inputs["noisy_stack"], inputs["noisy_table"])
    typed = TrainSettings.from_config(settings)
    return train_simsearch(clean, noisy, typed, strategy, seed, device, threads, model, history)


def confidences(annotations: Mapping[str, Any], default: float) -> dict[str, float]:
    """Per-class detection confidence: the one chosen in the UI, else ``default``."""
    return {
        entry["name"]: float(entry.get("confidence", default)) for entry in annotations["classes"]
    }


def detect_test_images(
    images: SheetImages,
    model: str,
    annotations: str,
    detect: DetectSettings,
    device: str,
    threads: int,
    detections: str,
    overlay: str,
) -> pd.DataFrame:
    """Detections on the test images (Parquet) and an overlay of the first one."""
    from fishline.simsearch.detect import detect as run_detection
    from fishline.simsearch.detect import overlay_figure

    image_set, split = images.load()
    test = split["test"] or image_set.names
    marked = json.loads(Path(annotations).read_text())
    found = run_detection(
        model,
        image_set,
        test,
        detect_stride(detect, marked),
        confidences(marked, detect.confidence),
        device,
        threads,
        detect.batch_size,
    )
    with atomic_outputs(detections) as (temp,):
        found.to_parquet(temp, index=False)
    first = test[0]
    overlay_figure(
        image_set.images[first],
        found[found["image"] == first],
        image_set.truth.get(first),
        overlay,
    )
    return found


def detect_stride(detect: DetectSettings, annotations: Mapping[str, Any]) -> int:
    """Detection stride in px: the configured one, or the annotations' search stride."""
    return max(1, round(detect.stride or annotations["stride"]))


def test_truth(image_set: ImageSet, roles: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Ground-truth points of the test images (an error when none has any)."""
    test = roles_of(image_set, roles)["test"]
    truth = {name: image_set.truth[name] for name in test if name in image_set.truth}
    if not truth:
        raise InputError(
            image_set.sheet, "no test image has ground-truth points to evaluate against"
        )
    return truth


def evaluate_model(
    sheet: str,
    detections: str,
    roles: Mapping[str, Any],
    classes: list[str],
    search: SearchSettings,
    evaluate: Mapping[str, Any],
    metrics: str,
    curve: str,
) -> dict[str, Any]:
    """PR AUC per class on the test images (metrics JSON) and the PR curves (Parquet).

    A detection matches within ``radius_strides`` x the search stride (the paper's 3).
    """
    from fishline.simsearch.evaluate import (
        evaluate_detections,
        match_detections,
        precision_recall,
    )

    truth = test_truth(load_image_set(sheet, None), roles)
    radius = evaluate["radius_strides"] * search.geometry()[1]
    found = pd.read_parquet(detections)
    result = evaluate_detections(found, truth, list(classes), radius)
    result.update({"radius": radius, "images": sorted(truth)})
    curves = []
    for name in classes:
        marked = [
            match_detections(
                found[(found["image"] == image) & (found["class"] == name)],
                frame[frame["class"] == name],
                radius,
            )[0]
            for image, frame in truth.items()
        ]
        rows = pd.concat(marked, ignore_index=True)
        points = precision_recall(
            rows["confidence"].to_numpy(),
            rows["tp"].to_numpy(bool),
            result["classes"][name]["truth"],
        )
        curves.append(points.assign(**{"class": name}))
    with atomic_outputs(metrics, curve) as (metrics_temp, curve_temp):
        metrics_temp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        pd.concat(curves, ignore_index=True).to_parquet(curve_temp, index=False)
    LOG.info("mean PR AUC %.3f", result["mean_auc"])
    return result


def parse_cell(cell: str) -> tuple[int, int, int]:
    """(prototypes, negatives, repeat) of an ablation cell name ``P<p>_N<n>_r<r>``."""
    parts = cell.split("_")
    try:
        return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:])
    except (IndexError, ValueError) as error:
        raise InputError("ablation", f"bad cell name '{cell}' (want P<p>_N<n>_r<r>)") from error


def ablation_cell(
    sheet: str,
    features: str,
    cell: str,
    settings: Mapping[str, Any],
    seed: int,
    out: str,
) -> pd.DataFrame:
    """One simulated user (P prototypes, N negatives) and every ablation strategy trained on
    its patches ``train_repeats`` times, each evaluated on the test images: one row per model.
    (Over 80 lines: one simulated user and every strategy trained and evaluated on it, in
    one scratch folder.)

    ``settings``: the simsearch config sections roles, classes, user, search, channels, noisy,
    train, detect, evaluate, ablation, device (as the rule passes them).
    """
    from fishline.simsearch.detect import detect as run_detection
    from fishline.simsearch.evaluate import evaluate_detections
    from fishline.simsearch.train import train_simsearch

    prototypes, negatives, repeat = parse_cell(cell)
    training = TrainSettings.from_config(settings["train"])
    search = SearchSettings.from_config(settings["search"])
    detect = DetectSettings.from_config(settings["detect"])
    classes = list(settings["classes"])
    image_set = load_image_set(sheet, settings["channels"])
    split = roles_of(image_set, settings["roles"])
    truth = test_truth(image_set, settings["roles"])
    user = {**settings["user"], "prototypes": prototypes, "negatives": negatives}
    annotations = _simulated_annotations(
        image_set, features, split["displayed"], classes, user, search, seed
    )
    clean, pseudo = _patch_sets(
        image_set,
        features,
        annotations,
        split["noisy"],
        settings["noisy"],
        search,
        seed,
    )
    radius = settings["evaluate"]["radius_strides"] * search.geometry()[1]
    stride = detect_stride(detect, annotations)
    confidence = confidences(annotations, detect.confidence)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for strategy in settings["ablation"]["strategies"]:
            for train_repeat in range(settings["ablation"]["train_repeats"]):
                model = Path(scratch) / f"{strategy}_{train_repeat}.pt"
                train_simsearch(
                    clean,
                    pseudo if strategy.endswith("selflearn") else None,
                    training,
                    strategy,
                    seed + 7919 * (train_repeat + 1),
                    settings["device"],
                    2,
                    str(model),
                    str(model.with_suffix(".parquet")),
                )
                found = run_detection(
                    model,
                    image_set,
                    list(truth),
                    stride,
                    confidence,
                    settings["device"],
                    2,
                    detect.batch_size,
                )
                result = evaluate_detections(found, truth, classes, radius)
                row = {
                    "cell": cell,
                    "prototypes": prototypes,
                    "negatives": negatives,
                    "user_repeat": repeat,
                    "strategy": strategy,
                    "train_repeat": train_repeat,
                    "auc": result["mean_auc"],
                    "clean_patches": len(clean[0]),
                    "noisy_patches": len(pseudo[0]),
                }
                row.update({f"auc_{k}": v["auc"] for k, v in result["classes"].items()})
                rows.append(row)
                LOG.info(
                    "%s %s repeat %d: mean PR AUC %.3f", cell, strategy, train_repeat, row["auc"]
                )
    frame = pd.DataFrame(rows)
    with atomic_outputs(out) as (temp,):
        frame.to_parquet(temp, index=False)
    return frame


def ablation_summary(
    cells: Sequence[str], supervised: str, table: str, html: str, violin: str
) -> pd.DataFrame:
    """The ablation table (TSV + HTML, mean +- std and the ratio to the supervised AUC) and
    its violin plot."""
    from fishline.simsearch.evaluate import ablation_figure, ablation_table
    from fishline.simsearch.figures import html_table

    runs = pd.concat([pd.read_parquet(path) for path in cells], ignore_index=True)
    baseline = json.loads(Path(supervised).read_text())["mean_auc"]
    frame = pd.concat(
        [
            runs[["strategy", "prototypes", "negatives", "auc"]],
            pd.DataFrame([{"strategy": "supervised", "auc": baseline}]),
        ],
        ignore_index=True,
    )
    summary = ablation_table(frame)
    summary["ratio_to_supervised"] = summary["mean"] / baseline if baseline else np.nan
    with atomic_outputs(table, html) as (table_temp, html_temp):
        summary.to_csv(table_temp, sep="\t", index=False, float_format="%.4f")
        html_temp.write_text(
            html_table(
                summary[["strategy", "setting", "runs", "text", "ratio_to_supervised"]].rename(
                    columns={"text": "PR AUC (mean ± std)", "ratio_to_supervised": "/ supervised"}
                ),
                "SimSearch ablation: detection PR AUC on the test images",
            )
        )
    ablation_figure(frame, violin)
    return summary


def annotation_report(
    sheet: str,
    features: str,
    annotations: str,
    channels: list[str] | None,
    correlation: str,
    proposals: str,
) -> None:
    """Channel correlation table and the annotations drawn on the displayed images."""
    from fishline.simsearch.figures import annotation_figure, html_table

    image_set = load_image_set(sheet, channels)
    marked = _checked_annotations(annotations, image_set, None)
    table = channel_correlation(load_image_set(sheet, None)).round(3)
    with atomic_outputs(correlation) as (temp,):
        temp.write_text(
            html_table(
                table.reset_index(names="channel"),
                "Mean channel correlation (Pearson) over the SimSearch images",
            )
        )
    annotation_figure(image_set, marked, proposals)


def detection_report(
    strategies: Sequence[str],
    metrics: Sequence[str],
    curves: Sequence[str],
    summary: str,
    figure: str,
) -> pd.DataFrame:
    """Per-model, per-class PR AUC table (with the ratio to the supervised baseline) and the
    PR curves figure."""
    from fishline.simsearch.figures import html_table, pr_figure

    rows = []
    for strategy, path in zip(strategies, metrics, strict=True):
        result = json.loads(Path(path).read_text())
        row = {"model": strategy, "mean PR AUC": result["mean_auc"]}
        for name, values in result["classes"].items():
            row[f"{name} AUC"] = values["auc"]
            row[f"{name} TP/FP/FN"] = f"{values['tp']}/{values['fp']}/{values['fn']}"
        rows.append(row)
    table = pd.DataFrame(rows)
    if "supervised" in strategies:
        baseline = table.loc[table["model"] == "supervised", "mean PR AUC"].iloc[0]
        table["/ supervised"] = table["mean PR AUC"] / baseline if baseline else np.nan
    with atomic_outputs(summary) as (temp,):
        temp.write_text(html_table(table.round(3), "SimSearch detection on the test images"))
    pr_figure(
        {
            strategy: pd.read_parquet(path)
            for strategy, path in zip(strategies, curves, strict=True)
        },
        figure,
    )
    return table


def segment_test_images(
    images: SheetImages,
    model: str,
    annotations: str,
    detect: DetectSettings,
    device: str,
    threads: int,
    out_dir: str,
) -> None:
    """Semantic segmentation of the test images: per pixel the most probable class of the
    interpolated window maps, where it reaches that class's confidence (0 = background,
    k = the k-th class of ``classes.tsv``). One label TIFF per image, written to a sibling
    folder first and renamed (a killed job leaves no partial folder)."""
    from fishline import models
    from fishline.simsearch.detect import probability_maps, segmentation_map
    from fishline.train.loop import setup_device

    chosen = setup_device(device, threads, 0)
    network, info = models.load(model)
    classes = info["class_names"]
    image_set, split = images.load()
    marked = json.loads(Path(annotations).read_text())
    confidence = confidences(marked, detect.confidence)
    with atomic_folder(out_dir) as temp:
        for name in split["test"] or image_set.names:
            probs, ys, xs = probability_maps(
                network,
                image_set.images[name],
                tuple(info["metadata"]["patch"]),
                detect_stride(detect, marked),
                chosen,
                detect.batch_size,
                info["metadata"]["input_size"],
            )
            labels = segmentation_map(probs, ys, xs, image_set.shape(name), classes, confidence)
            write_image(temp / f"{name}.tif", labels.astype(np.uint8))
            LOG.info("segmented %s: %s", name, np.bincount(labels.ravel()).tolist())
        pd.DataFrame({"value": range(1, len(classes) + 1), "class": classes}).query(
            "`class` != 'background'"
        ).to_csv(temp / "classes.tsv", sep="\t", index=False)


def cell_call_curve(
    sheet: str,
    channels: list[str] | None,
    search: SearchSettings,
    cells: CellCallSettings,
    seed: int,
    device: str,
    threads: int,
    outputs: Mapping[str, str],
) -> pd.DataFrame:
    """Per-cell calls on a sheet with truth points: a window centred on every cell, embedded
    once (with its rotations when some draw picks it as an example: only examples are
    rotated), then :func:`fishline.simsearch.cells.prototype_curve`.
    ``outputs`` names the files: curve (TSV, one row per draw), summary (TSV), table (HTML),
    figure (PNG) and calls (Parquet: the example draw's calls beside the truth, per head)."""
    from fishline.simsearch.cells import (
        CellClassifier,
        curve_summary,
        example_draws,
        prototype_curve,
        window_crops,
    )
    from fishline.simsearch.figures import html_table, prototype_curve_figure
    from fishline.train.loop import setup_device

    torch_device = setup_device(device, threads, seed)
    image_set = load_image_set(sheet, channels)
    if not image_set.truth:
        raise InputError(sheet, "per-cell calls are scored against truth points; none given")
    crops, table = window_crops(image_set, cells.window)
    extractor = extractor_for(search, len(image_set.channels), seed, str(torch_device))
    classes = table["class"].to_numpy(dtype=object)
    plan = example_draws(classes, cells.prototypes, cells.draws, seed)
    examples = np.unique(np.concatenate([chosen for *_, chosen in plan]))
    turned = [np.rot90(crops[i], k, axes=(1, 2)) for i in examples for k in (1, 2, 3)]
    views = np.full((len(crops), 4, extractor.dimension), np.nan, np.float32)
    views[:, 0] = extractor.embed(crops)
    views[examples, 1:] = extractor.embed(turned).reshape(len(examples), 3, -1)
    LOG.info(
        "%d of the cells are examples in some draw: embedded with their rotations", len(examples)
    )
    LOG.info("%d cells of %d classes, %d-d vectors", len(crops), len(set(classes)), views.shape[2])
    curves, calls = [], []
    for head in cells.heads:
        classifier = CellClassifier(
            extractor,
            cells.temperature,
            head=head,
            learn_weights=cells.learn_weights and extractor.channel_mode == "separate",
        )
        curve, head_calls = prototype_curve(
            classifier,
            views,
            classes,
            cells.prototypes,
            cells.draws,
            seed,
            cells.self_learning.min_confidence,
            cells.self_learning.neighbours,
        )
        curves.append(curve)
        calls.append(table.loc[head_calls.index].join(head_calls).assign(head=head))
    curve = pd.concat(curves, ignore_index=True)
    summary = curve_summary(curve, len(set(classes)))
    calls = pd.concat(calls)
    files = [outputs[name] for name in ("curve", "summary", "table", "calls")]
    with atomic_outputs(*files) as temps:
        curve.to_csv(temps[0], sep="\t", index=False)
        summary.to_csv(temps[1], sep="\t", index=False)
        shown = summary[
            ["prototypes", "head", "strategy", "draws", "accuracy", "chance", "certainty"]
        ]
        temps[2].write_text(
            html_table(shown, "Per-cell calls: accuracy on the cells not given as examples")
        )
        calls.to_parquet(temps[3])
    prototype_curve_figure(summary, 1 / len(set(classes)), outputs["figure"])
    for row in summary.itertuples():
        LOG.info("%d per class, %s, %s: %s", row.prototypes, row.head, row.strategy, row.accuracy)
    return summary
