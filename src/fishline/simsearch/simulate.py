"""The simulated user of the ablation (notes): random truth objects as prototypes, the
threshold lowered until N false proposals remain, background flagged from the truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.simsearch.annotations import check_annotations
from fishline.simsearch.features import FeatureExtractor, FeatureGrid, grid_index
from fishline.simsearch.images import ImageSet
from fishline.simsearch.search import Searcher, background_candidates


def match_radius(stride: float) -> float:
    """A proposal within this many px of a truth centre finds it (notes: 3 x stride)."""
    return 3.0 * stride


def prototype_box(
    x: float, y: float, patch: tuple[int, int], shape: tuple[int, int]
) -> dict[str, int]:
    """Box {x, y, width, height} of the patch centred on (x, y), shifted inside the image."""
    height, width = patch
    rows, columns = shape
    left = int(np.clip(round(x) - width // 2, 0, columns - width))
    top = int(np.clip(round(y) - height // 2, 0, rows - height))
    return {"x": left, "y": top, "width": width, "height": height}


def near_truth(points: pd.DataFrame, truth: pd.DataFrame, radius: float) -> np.ndarray:
    """Boolean per point [image, x, y]: some truth point [image, x, y] lies within ``radius``."""
    found = np.zeros(len(points), dtype=bool)
    for name, group in points.groupby("image", sort=False):
        mine = truth[truth["image"] == name]
        if mine.empty:
            continue
        xy = group[["x", "y"]].to_numpy(np.float64)
        ref = mine[["x", "y"]].to_numpy(np.float64)
        distance = np.hypot(xy[:, None, 0] - ref[None, :, 0], xy[:, None, 1] - ref[None, :, 1])
        found[points.index.get_indexer(group.index)] = distance.min(axis=1) <= radius
    return found


def choose_threshold(truth_flags: np.ndarray, scores: np.ndarray, negatives: int) -> float:
    """Lower the threshold over ranked peaks (scores descending) until ``negatives`` false
    ones are in: the threshold is the lowest score above the next false peak, so exactly
    ``negatives`` false peaks pass when that many exist (else every peak passes)."""
    false_ranks = np.flatnonzero(~truth_flags)
    if len(false_ranks) <= negatives:
        return float(scores[-1]) if len(scores) else 1.0
    stop = false_ranks[negatives]
    if stop == 0:  # the best peak is already false: nothing passes
        return float(min(1.0, np.nextafter(np.float32(scores[0]), np.float32(2))))
    return float(scores[stop - 1])


def _points(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"image": str(row.image), "x": float(row.x), "y": float(row.y), "score": float(row.score)}
        for row in frame.itertuples()
    ]


def simulate_annotations(
    image_set: ImageSet,
    grids: dict[str, FeatureGrid],
    extractor: FeatureExtractor,
    displayed: list[str],
    classes: list[str],
    prototypes: int,
    negatives: int,
    background: int,
    seed: int,
    sheet: str,
) -> dict[str, Any]:
    """A valid annotations dict as a user following the protocol would save it.
    (10 parameters, about 80 lines: the protocol's steps (prototypes, threshold, negatives,
    background) in the order a user takes them, each needing the settings passed here.)

    Per class: ``prototypes`` random truth objects of the displayed images become prototype
    boxes; the threshold is lowered until ``negatives`` false proposals (farther than
    :func:`match_radius` from every truth point of that class) are in; the true proposals
    are the positives. Background: ``background`` hard and ``background`` easy candidates;
    those within the match radius of a truth object of a target class are flagged
    not_background (cells of other classes, e.g. ``absent``, are background).
    """
    missing = [name for name in displayed if name not in grids or name not in image_set.truth]
    if missing:
        raise InputError(sheet, f"displayed image(s) {missing} lack a feature grid or truth")
    rng = np.random.default_rng(seed)
    shown = {name: grids[name] for name in displayed}
    stride = next(iter(shown.values())).stride
    radius = match_radius(stride)
    truth = pd.concat(
        [image_set.truth[name].assign(image=name) for name in displayed], ignore_index=True
    )
    searcher = Searcher(shown)
    entries = []
    all_vectors = []
    marked = []
    for name in classes:
        objects = truth[truth["class"] == name].reset_index(drop=True)
        if objects.empty:
            raise InputError(sheet, f"no truth object of class '{name}' in the displayed images")
        chosen = objects.iloc[rng.permutation(len(objects))[: min(prototypes, len(objects))]]
        boxes = [
            {
                "image": str(row.image),
                **prototype_box(row.x, row.y, extractor.patch, image_set.shape(row.image)),
            }
            for row in chosen.itertuples()
        ]
        vectors = np.concatenate(
            [extractor.prototype_vectors(image_set.images[box["image"]], box) for box in boxes]
        )
        all_vectors.append(vectors)
        peaks = searcher.peaks(vectors).reset_index(drop=True)
        flags = near_truth(peaks, objects, radius)
        threshold = choose_threshold(flags, peaks["score"].to_numpy(), negatives)
        passed = (peaks["score"] >= threshold).to_numpy()
        positives, false = peaks[passed & flags], peaks[passed & ~flags]
        marked.append(peaks.loc[passed, ["image", "x", "y"]])
        entries.append(
            {
                "name": name,
                "prototypes": boxes,
                "threshold": float(np.clip(threshold, -1.0, 1.0)),
                "positives": _points(positives),
                "negatives": _points(false),
            }
        )
    mean_vector = np.concatenate(all_vectors).mean(axis=0)
    exclude = pd.concat(marked, ignore_index=True)
    hard, easy = background_candidates(
        shown, mean_vector, exclude, background, extractor.patch[1] / 2, seed
    )
    proposed = pd.concat([hard, easy], ignore_index=True)
    targets = truth[truth["class"].isin(classes)]
    flagged = proposed[near_truth(proposed, targets, radius)]
    data = {
        "version": 1,
        "sheet": sheet,
        "channels": list(image_set.channels),
        "displayed": list(displayed),
        "patch": {"width": extractor.patch[1], "height": extractor.patch[0]},
        "stride": float(stride),
        "backbone": extractor.backbone,
        **extractor.channel_settings(),
        "classes": entries,
        "background": {"proposed": _points(proposed), "not_background": _points(flagged)},
    }
    shapes = {name: image_set.shape(name) for name in image_set.names}
    return check_annotations(data, sheet, shapes, classes)


def average_precision(is_true: np.ndarray, total: int) -> float:
    """Area under the precision-recall curve of a ranked list (best first): the mean, over
    all ``total`` truth objects, of the precision at the rank where each is found (0 for
    those never found; average-precision interpolation)."""
    if total == 0:
        raise InputError("truth", "no truth objects to score against")
    hits = np.cumsum(is_true)
    precision = hits / np.arange(1, len(is_true) + 1)
    return float(precision[is_true].sum() / total)


def match_ranked(peaks: pd.DataFrame, truth: pd.DataFrame, radius: float) -> np.ndarray:
    """Per ranked peak [image, x, y] (best first): it is the first within ``radius`` of a
    still unmatched truth point [image, x, y] (greedy, the nearest such point)."""
    matched = np.zeros(len(peaks), dtype=bool)
    for name, group in peaks.groupby("image", sort=False):
        ref = truth.loc[truth["image"] == name, ["x", "y"]].to_numpy(np.float64)
        free = np.ones(len(ref), dtype=bool)
        for position, x, y in zip(
            peaks.index.get_indexer(group.index), group["x"], group["y"], strict=True
        ):
            if not free.any():
                break
            distance = np.where(free, np.hypot(ref[:, 0] - x, ref[:, 1] - y), np.inf)
            nearest = int(np.argmin(distance))
            if distance[nearest] <= radius:
                free[nearest] = False
                matched[position] = True
    return matched


def proposal_auc(
    image_set: ImageSet,
    grids: dict[str, FeatureGrid],
    classes: list[str],
    prototypes: int,
    seed: int,
) -> float:
    """Mean over ``classes`` of the PR-curve area of raw similarity proposals (every ranked
    peak, no threshold) against the truth of the grids' images, with ``prototypes`` random
    truth objects per class as prototypes (their grid window vectors, no rotations).

    The prototype objects themselves are left out of the truth and their peaks out of the
    ranking, so a backbone is not rewarded for finding its own prototypes.
    """
    rng = np.random.default_rng(seed)
    names = [name for name in grids if name in image_set.truth]
    if not names:
        raise InputError(image_set.sheet, "no image with both a feature grid and truth")
    stride = grids[names[0]].stride
    radius = match_radius(stride)
    truth = pd.concat(
        [image_set.truth[name].assign(image=name) for name in names], ignore_index=True
    )
    searcher = Searcher({name: grids[name] for name in names})
    scores = []
    for name in classes:
        objects = truth[truth["class"] == name].reset_index(drop=True)
        if len(objects) <= prototypes:
            raise InputError(image_set.sheet, f"class '{name}' has only {len(objects)} objects")
        pick = rng.permutation(len(objects))[:prototypes]
        chosen = objects.iloc[pick]
        vectors = []
        for row in chosen.itertuples():
            grid = grids[row.image]
            vectors.append(grid.vectors[grid_index(grid, row.x, row.y)])
        peaks = searcher.peaks(np.stack(vectors)).reset_index(drop=True)
        peaks = peaks[~near_truth(peaks, chosen, radius)].reset_index(drop=True)
        rest = objects.drop(index=pick)
        scores.append(average_precision(match_ranked(peaks, rest, radius), len(rest)))
    return float(np.mean(scores))
