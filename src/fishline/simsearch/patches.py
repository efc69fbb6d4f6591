"""Patch sets for SimSearch training: clean (what the user marked), noisy (the saved search
run on the images not displayed) and supervised (every truth object, the baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, encode_pages, write_stack
from fishline.logging import progress_bar
from fishline.simsearch.features import FeatureExtractor, FeatureGrid, box_centre
from fishline.simsearch.images import ImageSet
from fishline.simsearch.search import Searcher, background_candidates

BACKGROUND = "background"
TABLE_COLUMNS = ["index", "image", "x", "y", "label", "role", "negative_of"]


def cut_patch(image: np.ndarray, x: float, y: float, patch: tuple[int, int]) -> np.ndarray:
    """C x h x w patch centred on pixel (x, y): rows round(y) - h // 2 ... + h (columns
    likewise), reflect-padded where it leaves the image."""
    height, width = patch
    top = round(y) - height // 2
    left = round(x) - width // 2
    rows, columns = image.shape[-2:]
    pad_y = (max(0, -top), max(0, top + height - rows))
    pad_x = (max(0, -left), max(0, left + width - columns))
    if any(pad_y + pad_x):
        mode = "reflect" if max(pad_y + pad_x) < min(rows, columns) else "symmetric"
        image = np.pad(image, ((0, 0), pad_y, pad_x), mode=mode)
        top += pad_y[0]
        left += pad_x[0]
    return image[:, top : top + height, left : left + width]


def to_uint8(patches: np.ndarray) -> np.ndarray:
    """Float patches in [0, 1] as uint8 0-255 (the patch-set storage type)."""
    return np.rint(np.clip(patches, 0.0, 1.0) * 255).astype(np.uint8)


def _stack(
    image_set: ImageSet, rows: pd.DataFrame, patch: tuple[int, int]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Cut every row's patch; returns (uint8 N x C x h x w, the table with ``index``)."""
    rows = rows.reset_index(drop=True)
    channels = len(image_set.channels)
    stack = np.zeros((len(rows), channels, *patch), dtype=np.uint8)
    for position, row in enumerate(rows.itertuples()):
        stack[position] = to_uint8(cut_patch(image_set.images[row.image], row.x, row.y, patch))
    rows.insert(0, "index", np.arange(len(rows)))
    return stack, rows


def patch_size(annotations: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the annotation's patches."""
    return int(annotations["patch"]["height"]), int(annotations["patch"]["width"])


def clean_patches(
    image_set: ImageSet, annotations: dict[str, Any]
) -> tuple[np.ndarray, pd.DataFrame]:
    """What the user marked: (uint8 N x C x h x w, table[index, image, x, y, label, role,
    negative_of]).

    Roles: prototype and positive (label = the class), negative (label background,
    negative_of = the class it was a false proposal of), background (proposed background not
    flagged as not_background; the flagged ones are dropped: their class is unknown).
    """
    patch = patch_size(annotations)
    rows: list[dict[str, Any]] = []
    for entry in annotations["classes"]:
        name = entry["name"]
        for box in entry["prototypes"]:
            x, y = box_centre(box["x"], box["y"], patch[0], patch[1])
            rows.append(_row(box["image"], x, y, name, "prototype", ""))
        rows.extend(
            _row(p["image"], p["x"], p["y"], name, "positive", "") for p in entry["positives"]
        )
        rows.extend(
            _row(p["image"], p["x"], p["y"], BACKGROUND, "negative", name)
            for p in entry["negatives"]
        )
    flagged = {(p["image"], p["x"], p["y"]) for p in annotations["background"]["not_background"]}
    rows.extend(
        _row(p["image"], p["x"], p["y"], BACKGROUND, "background", "")
        for p in annotations["background"]["proposed"]
        if (p["image"], p["x"], p["y"]) not in flagged
    )
    _check_images(image_set, rows)
    return _stack(image_set, pd.DataFrame(rows, columns=TABLE_COLUMNS[1:]), patch)


def _row(image: str, x: float, y: float, label: str, role: str, negative_of: str) -> dict:
    return {
        "image": image,
        "x": float(x),
        "y": float(y),
        "label": label,
        "role": role,
        "negative_of": negative_of,
    }


def _check_images(image_set: ImageSet, rows: list[dict[str, Any]]) -> None:
    unknown = sorted({row["image"] for row in rows} - set(image_set.names))
    if unknown:
        raise InputError(image_set.sheet, f"annotations name image(s) {unknown} not in the sheet")


def noisy_patches(
    image_set: ImageSet,
    grids: dict[str, FeatureGrid],
    extractor: FeatureExtractor,
    annotations: dict[str, Any],
    background_per_image: int,
    seed: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Pseudo-labelled patches from the images NOT displayed: the saved prototypes (vectors
    from their boxes on the displayed images) searched at each class's saved threshold.

    Where proposals of several classes fall closer than half a patch width, the highest
    score's class wins. Background: per image ``background_per_image`` windows, half hard
    and half easy (:func:`search.background_candidates`), away from every proposal. Table:
    [index, image, x, y, label, role (proposal or background), negative_of (empty), score].
    """
    patch = patch_size(annotations)
    hidden = [n for n in image_set.names if n not in annotations["displayed"]]
    missing = [n for n in hidden if n not in grids]
    if missing:
        raise InputError(image_set.sheet, f"no feature grid for image(s) {missing}")
    _check_images(
        image_set, [{"image": b["image"]} for c in annotations["classes"] for b in c["prototypes"]]
    )
    searcher = Searcher({name: grids[name] for name in hidden})
    found, vectors = [], []
    for entry in annotations["classes"]:
        prototypes = np.concatenate(
            [
                extractor.prototype_vectors(image_set.images[b["image"]], b)
                for b in entry["prototypes"]
            ]
        )
        vectors.append(prototypes)
        found.append(searcher.proposals(prototypes, entry["threshold"]).assign(label=entry["name"]))
    proposals = pd.concat(found, ignore_index=True).sort_values(
        "score", ascending=False, kind="stable"
    )
    distance = patch[1] / 2
    kept = []
    for _, group in proposals.groupby("image", sort=False):
        xy = group[["x", "y"]].to_numpy(np.float64)
        keep: list[int] = []
        for index in range(len(group)):
            if keep and np.min(np.hypot(*(xy[keep] - xy[index]).T)) < distance:
                continue
            keep.append(index)
        kept.append(group.iloc[keep])
    proposals = pd.concat(kept, ignore_index=True) if kept else proposals.iloc[:0]
    proposals = proposals.assign(role="proposal", negative_of="")
    mean_vector = np.concatenate(vectors).mean(axis=0)
    backgrounds = []
    for number, name in enumerate(progress_bar(hidden, desc="noisy background")):
        hard, easy = background_candidates(
            {name: grids[name]},
            mean_vector,
            proposals[["image", "x", "y"]],
            (background_per_image + 1) // 2,
            distance,
            seed + number,
        )
        both = pd.concat([hard, easy.head(background_per_image // 2)], ignore_index=True)
        backgrounds.append(both.assign(label=BACKGROUND, role="background", negative_of=""))
    table = pd.concat([proposals, *backgrounds], ignore_index=True)
    columns = [*TABLE_COLUMNS[1:], "score"]
    return _stack(image_set, table[columns], patch)


def supervised_patches(
    image_set: ImageSet,
    names: list[str],
    classes: list[str],
    patch: tuple[int, int],
    background_per_image: int,
    seed: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The fully supervised baseline: every truth object of ``names`` (label = its class when
    a target class, else background; role truth), ``background_per_image`` random windows
    per image at least a patch width from every truth object (role background), and per
    target object one window 0.4-0.7 patch widths off its centre (role off_centre, label
    background), so that, as the user's hard background does, the baseline learns that a
    window beside an object is not that object (without them it detects every shifted window).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for name in names:
        if name not in image_set.truth:
            raise InputError(image_set.sheet, "no truth points for a supervised image", item=name)
        truth = image_set.truth[name]
        for x, y, kind in zip(truth["x"], truth["y"], truth["class"], strict=True):
            label = kind if kind in classes else BACKGROUND
            rows.append(_row(name, x, y, label, "truth", ""))
        rows.extend(_random_background(rng, image_set, name, truth, patch, background_per_image))
        rows.extend(_off_centre(rng, image_set, name, truth, classes, patch))
    return _stack(image_set, pd.DataFrame(rows, columns=TABLE_COLUMNS[1:]), patch)


def _random_background(
    rng: np.random.Generator,
    image_set: ImageSet,
    name: str,
    truth: pd.DataFrame,
    patch: tuple[int, int],
    count: int,
) -> list[dict[str, Any]]:
    """Up to ``count`` uniform random windows a patch width from truth and from each other."""
    height, width = image_set.shape(name)
    distance = float(patch[1])
    taken = truth[["x", "y"]].to_numpy(np.float64).reshape(-1, 2)
    rows = []
    for _ in range(50 * count):
        if len(rows) >= count:
            break
        point = rng.uniform([0, 0], [width, height]).round(1)
        if len(taken) and np.min(np.hypot(*(taken - point).T)) < distance:
            continue
        taken = np.vstack([taken, point])
        rows.append(_row(name, point[0], point[1], BACKGROUND, "background", ""))
    return rows


def _off_centre(
    rng: np.random.Generator,
    image_set: ImageSet,
    name: str,
    truth: pd.DataFrame,
    classes: list[str],
    patch: tuple[int, int],
) -> list[dict[str, Any]]:
    """One background window 0.4-0.7 patch widths from each target object's centre, inside
    the image and at least 0.4 patch widths from every truth centre."""
    height, width = image_set.shape(name)
    centres = truth[["x", "y"]].to_numpy(np.float64).reshape(-1, 2)
    rows = []
    for x, y, kind in zip(truth["x"], truth["y"], truth["class"], strict=True):
        if kind not in classes:
            continue
        angle = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(0.4, 0.7) * patch[1]
        point = np.array([x + radius * np.cos(angle), y + radius * np.sin(angle)]).round(1)
        inside = 0 <= point[0] < width and 0 <= point[1] < height
        if inside and np.min(np.hypot(*(centres - point).T)) >= 0.4 * patch[1]:
            rows.append(_row(name, point[0], point[1], BACKGROUND, "off_centre", ""))
    return rows


def write_patch_set(
    stack: np.ndarray,
    table: pd.DataFrame,
    channels: list[str],
    stack_path: str | Path,
    table_path: str | Path,
) -> None:
    """Write a patch set (uint8 TIFF stack + Parquet table), both or neither."""
    if len(stack) != len(table) or not np.array_equal(table["index"], np.arange(len(stack))):
        raise InputError(str(table_path), f"table rows do not index the {len(stack)} patches")
    with atomic_outputs(stack_path, table_path) as (stack_temp, table_temp):
        write_stack(
            stack_temp, encode_pages(stack, "zlib"), stack.shape, np.uint8, channels, "zlib"
        )
        table.to_parquet(table_temp, index=False)
