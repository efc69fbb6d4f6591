"""SimSearch detection: a trained model slides over whole images (batched windows), softmax
gives one probability map per class, local maxima above a per-class confidence are the
detections (notes, "Detection"); optional semantic segmentation from the resized maps.

About 420 lines, a third of them the numpydoc of its public API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage

from fishline import models
from fishline.errors import InputError
from fishline.logging import get_logger, progress_bar
from fishline.plots import CLASS_COLOURS, save_figure
from fishline.schema import default
from fishline.simsearch.images import ImageSet
from fishline.simsearch.train import BACKGROUND, mixed_precision
from fishline.train.loop import torch_settings

log = get_logger("simsearch.detect")

DETECTION_COLUMNS = ["image", "x", "y", "class", "confidence"]


def window_centres(length: int, stride: int) -> np.ndarray:
    """Pixel centres of the sliding windows along one axis: stride // 2, + stride, ... < length.

    Parameters
    ----------
    length : int
        Image size along the axis, px.
    stride : int
        Distance between window centres, px.

    Returns
    -------
    numpy.ndarray
        (n,) int64 centres, px.
    """
    return np.arange(stride // 2, length, stride)


@torch.no_grad()
def probability_maps(
    model: torch.nn.Module,
    image: np.ndarray,
    patch: tuple[int, int],
    stride: int,
    device: str | torch.device,
    batch_size: int,
    input_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class probabilities of every window of a float C x H x W image in [0, 1].

    A window of size ``patch`` (h, w) is centred on each (y, x) of :func:`window_centres`
    (reflect padding at the borders, as patches are cut), resized to ``input_size`` (the
    model's training size; None keeps the patch size) and classified in batches. Windows are
    quantised to uint8 first, as training patches are.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier of (N, C, s, s) float32 windows in [0, 1] to (N, K) logits.
    image : numpy.ndarray
        (C, H, W) float image in [0, 1] (clipped to it).
    patch : tuple of int
        Window (height, width), px.
    stride : int
        Distance between window centres, px (rounded).
    device : str or torch.device
        Where the model runs.
    batch_size : int
        Windows per forward pass.
    input_size : int or None, optional
        Side the windows are resized to (bilinear), px; None (default) keeps ``patch``.

    Returns
    -------
    probs : numpy.ndarray
        (K, gh, gw) float32 softmax probabilities, one map per class.
    ys : numpy.ndarray
        (gh,) int64 window-centre rows, px.
    xs : numpy.ndarray
        (gw,) int64 window-centre columns, px.

    Raises
    ------
    InputError
        If ``stride`` rounds to less than 1 px.
    """
    height, width = image.shape[1:]
    stride = round(float(stride))
    if stride < 1:
        raise InputError("detection", f"stride must be >= 1 pixel, got {stride}")
    ph, pw = patch
    quantised = np.round(np.clip(image, 0, 1) * 255) / 255
    tensor = torch.as_tensor(quantised, dtype=torch.float32, device=device)
    padded = F.pad(
        tensor[None], (pw // 2, pw - pw // 2 - 1, ph // 2, ph - ph // 2 - 1), mode="reflect"
    )[0]
    ys, xs = window_centres(height, stride), window_centres(width, stride)
    # window with centre (y, x) starts at padded row y, column x
    windows = padded[:, ys[0] :, xs[0] :].unfold(1, ph, stride).unfold(2, pw, stride)
    windows = windows[:, : len(ys), : len(xs)].permute(1, 2, 0, 3, 4)
    windows = windows.reshape(len(ys) * len(xs), image.shape[0], ph, pw)
    model = model.to(device).eval()
    outputs = []
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        if input_size is not None and (ph, pw) != (input_size, input_size):
            batch = F.interpolate(
                batch, size=(input_size, input_size), mode="bilinear", align_corners=False
            )
        with mixed_precision(tensor.device):
            logits = model(batch).float()
        outputs.append(torch.softmax(logits, dim=1).cpu())
    probs = torch.cat(outputs).T.reshape(-1, len(ys), len(xs))
    return probs.numpy().astype(np.float32), ys, xs


def local_maxima(score: np.ndarray, threshold: float, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells that are the maximum of their (2 radius + 1)^2 neighbourhood and
    >= threshold; plateaus keep only their first cell (row-major).

    Parameters
    ----------
    score : numpy.ndarray
        (gh, gw) float score map.
    threshold : float
        Least score of a maximum.
    radius : int
        Neighbourhood half-size, grid cells; kept maxima are more than ``radius`` cells apart
        along a row or a column.

    Returns
    -------
    rows : numpy.ndarray
        (n,) int64 grid rows of the maxima, row-major order.
    cols : numpy.ndarray
        (n,) int64 grid columns.
    """
    size = 2 * radius + 1
    peaks = (score == ndimage.maximum_filter(score, size=size, mode="nearest")) & (
        score >= threshold
    )
    rows, cols = np.nonzero(peaks)
    keep: list[int] = []
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        if all(abs(r - rows[j]) > radius or abs(c - cols[j]) > radius for j in keep):
            keep.append(i)
    return rows[keep], cols[keep]


def detect_image(
    model: torch.nn.Module,
    image: np.ndarray,
    name: str,
    classes: Sequence[str],
    patch: tuple[int, int],
    stride: int,
    confidence: Mapping[str, float],
    device: str | torch.device = "cpu",
    batch_size: int = default("simsearch.detect.batch_size"),
    input_size: int | None = None,
    min_distance: float | None = None,
) -> pd.DataFrame:
    """Detections of one image: per target class, the local maxima of its probability map
    that are >= its confidence and where it is the most probable class; classes missing
    from ``confidence`` are not detected.
    (11 parameters: the model's geometry (patch, stride, input size) and the detection
    settings, kept apart so a notebook can call it on one image.)

    Parameters
    ----------
    model : torch.nn.Module
        Window classifier, as :func:`probability_maps` takes.
    image : numpy.ndarray
        (C, H, W) float image in [0, 1].
    name : str
        Image name, written to the ``image`` column.
    classes : Sequence of str
        Class names in the model's output order; ``background`` is never detected.
    patch : tuple of int
        Window (height, width), px.
    stride : int
        Distance between window centres, px.
    confidence : Mapping of str to float
        Least probability (0-1) per target class; classes absent here are not detected.
    device : str or torch.device, optional
        Where the model runs; default ``"cpu"``.
    batch_size : int, optional
        Windows per forward pass; default: the schema's ``simsearch.detect.batch_size``.
    input_size : int or None, optional
        Model input side, px (:func:`probability_maps`); None (default) keeps ``patch``.
    min_distance : float or None, optional
        Smallest distance between two detections of one class, px; None (default) for half
        the patch width.

    Returns
    -------
    pandas.DataFrame
        Columns ``image``, ``x`` and ``y`` (window centre, px, int), ``class`` and
        ``confidence`` (the class's probability, 0-1); one row per detection.

    Raises
    ------
    InputError
        If ``confidence`` names a class the model does not have, or ``stride`` < 1 px.
    """
    unknown = sorted(set(confidence) - set(classes))
    if unknown:
        raise InputError("confidence", f"unknown class(es) {unknown}; the model has {classes}")
    probs, ys, xs = probability_maps(model, image, patch, stride, device, batch_size, input_size)
    best = probs.argmax(axis=0)
    radius = max(1, round((min_distance or patch[1] / 2) / stride))
    rows = []
    for k, label in enumerate(classes):
        if label == BACKGROUND or label not in confidence:
            continue
        score = np.where(best == k, probs[k], 0.0)
        r, c = local_maxima(score, confidence[label], radius)
        rows += [
            {
                "image": name,
                "x": int(xs[j]),
                "y": int(ys[i]),
                "class": label,
                "confidence": float(probs[k, i, j]),
            }
            for i, j in zip(r, c, strict=True)
        ]
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


def detect(
    model_path: str | Path,
    image_set: ImageSet,
    names: Sequence[str] | None,
    stride: int,
    confidence: Mapping[str, float],
    device: str = "cpu",
    threads: int = 2,
    batch_size: int = default("simsearch.detect.batch_size"),
) -> pd.DataFrame:
    """Detections of a saved SimSearch model on the named images (all when None), with the
    patch and input sizes stored in the model file.

    Parameters
    ----------
    model_path : str or pathlib.Path
        A SimSearch model file (kind ``simsearch``).
    image_set : ImageSet
        The images, (C, H, W) float32 in [0, 1].
    names : Sequence of str or None
        Images to search; None for all, in sheet order.
    stride : int
        Distance between window centres, px.
    confidence : Mapping of str to float
        Least probability (0-1) per target class; classes absent here are not detected.
    device : str, optional
        ``cpu``, ``cuda`` or ``auto``; default ``"cpu"``.
    threads : int, optional
        CPU threads for torch during the call; default 2.
    batch_size : int, optional
        Windows per forward pass; default: the schema's ``simsearch.detect.batch_size``.

    Returns
    -------
    pandas.DataFrame
        Columns ``image``, ``x``, ``y`` (px), ``class`` and ``confidence`` (0-1), sorted by
        image, then confidence (highest first).

    Raises
    ------
    InputError
        If the file is not a readable SimSearch model, ``names`` has an image the set lacks,
        or ``confidence`` names a class the model does not have.
    """
    model, info = models.load(model_path)
    if info["kind"] != "simsearch":
        raise InputError(str(model_path), f"not a SimSearch model (kind {info['kind']})")
    patch = tuple(info["metadata"]["patch"])
    wanted = list(names) if names is not None else image_set.names
    missing = [name for name in wanted if name not in image_set.images]
    if missing:
        raise InputError(image_set.sheet, f"unknown image(s) {missing}", item="detect")
    with torch_settings(device, threads, 0) as chosen:
        frames = [
            detect_image(
                model,
                image_set.images[name],
                name,
                info["class_names"],
                patch,
                stride,
                confidence,
                chosen,
                batch_size,
                info["metadata"]["input_size"],
            )
            for name in progress_bar(wanted, desc="detect")
        ]
    out = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DETECTION_COLUMNS)
    )
    log.info("%d detections on %d image(s)", len(out), len(wanted))
    return out.sort_values(["image", "confidence"], ascending=[True, False], ignore_index=True)


def segmentation_map(
    probs: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    shape: tuple[int, int],
    classes: Sequence[str],
    confidence: Mapping[str, float],
) -> np.ndarray:
    """Semantic segmentation (H x W int32): the maps resized to the image by bilinear
    interpolation between window centres (nearest beyond the outer centres), then per pixel
    the arg-max class when it is a target class at or above its confidence; 0 = background,
    k + 1 = ``classes[k]`` (classes absent from ``confidence`` count as background).

    Parameters
    ----------
    probs : numpy.ndarray
        (K, gh, gw) float class probabilities (:func:`probability_maps`).
    ys : numpy.ndarray
        (gh,) window-centre rows, px, evenly spaced.
    xs : numpy.ndarray
        (gw,) window-centre columns, px, evenly spaced.
    shape : tuple of int
        Image (height, width), px.
    classes : Sequence of str
        Class names in the maps' order.
    confidence : Mapping of str to float
        Least probability (0-1) per target class; classes absent here are not detected.

    Returns
    -------
    numpy.ndarray
        (H, W) int32 labels: 0 = background, k + 1 = ``classes[k]``.
    """
    height, width = shape
    stride_y = ys[1] - ys[0] if len(ys) > 1 else 1
    stride_x = xs[1] - xs[0] if len(xs) > 1 else 1
    rows = (np.arange(height) - ys[0]) / stride_y
    cols = (np.arange(width) - xs[0]) / stride_x
    grid = np.meshgrid(rows, cols, indexing="ij")
    full = np.stack([ndimage.map_coordinates(m, grid, order=1, mode="nearest") for m in probs])
    best = full.argmax(axis=0)
    top = full.max(axis=0)
    out = np.zeros(shape, dtype=np.int32)
    for k, label in enumerate(classes):
        if label != BACKGROUND and label in confidence:
            out[(best == k) & (top >= confidence[label])] = k + 1
    return out


def overlay_figure(
    image: np.ndarray,
    detections: pd.DataFrame,
    truth: pd.DataFrame | None,
    path: str | Path,
) -> None:
    """PNG of a C x H x W image (channel 0 blue, 1 green, 2 red) with detections (crosses,
    one colour per class) and ground truth (open circles of the same colours).

    Parameters
    ----------
    image : numpy.ndarray
        (C, H, W) float image in [0, 1] (clipped; channels past the third are not shown).
    detections : pandas.DataFrame
        Detections with columns ``x``, ``y`` (px) and ``class``.
    truth : pandas.DataFrame or None
        Ground-truth points with the same columns, or None.
    path : str or pathlib.Path
        The PNG file written.
    """
    rgb = np.zeros((*image.shape[1:], 3), dtype=np.float32)
    for channel, colour in zip(range(min(3, image.shape[0])), (2, 1, 0), strict=False):
        rgb[..., colour] = np.clip(image[channel], 0, 1)
    figure, axis = plt.subplots(figsize=(6, 6 * image.shape[1] / image.shape[2]))
    axis.imshow(rgb)
    labels = sorted(
        set(detections["class"]) | (set(truth["class"]) if truth is not None else set())
    )
    colour_of = {label: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, label in enumerate(labels)}
    for label in labels:
        points = truth[truth["class"] == label] if truth is not None else []
        if len(points):
            axis.scatter(
                points["x"],
                points["y"],
                s=60,
                facecolors="none",
                edgecolors=colour_of[label],
                linewidths=1.2,
                label=f"{label} truth",
            )
        found = detections[detections["class"] == label]
        if len(found):
            axis.scatter(
                found["x"],
                found["y"],
                s=40,
                marker="x",
                color=colour_of[label],
                label=f"{label} detected",
            )
    if labels:
        axis.legend(loc="upper right", fontsize=7, framealpha=0.7)
    axis.set_axis_off()
    save_figure(figure, path)
