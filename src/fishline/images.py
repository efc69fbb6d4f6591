"""Reading whole images of any sample sheet: TIFF (channel axis first) or PNG, one or several
files stacked as channels, with one clear error per bad file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import tifffile

from fishline.errors import InputError

PATH_SEPARATOR = ";"


def split_paths(value: str) -> list[str]:
    """The file paths of a sheet cell: several files are joined by ``;``."""
    return [part.strip() for part in value.split(PATH_SEPARATOR) if part.strip()]


# More planes than this in a 3-D image are not channels (a z-stack or a time series).
MAX_CHANNELS = 16


def _channels_first(image: np.ndarray, path: str) -> np.ndarray:
    """C x H x W from a 2-D image or a 3-D one whose channel axis is first or last.

    The channel axis is the one clearly smaller than both others (at most ``MAX_CHANNELS``):
    a 1000 x 1200 x 2 image has 2 channels, never 1000. Shapes where that is not clear are
    refused with what to do instead.
    """
    if image.ndim == 2:
        return image[None]
    if image.ndim != 3:
        raise InputError(path, f"expected a 2-D image or a channel stack, got shape {image.shape}")
    sizes = sorted(image.shape)
    channel_axis = int(np.argmin(image.shape))
    if sizes[0] > MAX_CHANNELS or sizes[0] == sizes[1] or channel_axis == 1:
        raise InputError(
            path,
            f"cannot tell which axis of shape {image.shape} holds the channels (expected one "
            f"axis of at most {MAX_CHANNELS}, first or last, smaller than the image's height "
            "and width): save it channel-first (C x H x W), channel-last (H x W x C) or one "
            "file per channel joined by ';' in the sheet",
        )
    return np.moveaxis(image, channel_axis, 0) if channel_axis == 2 else image


def read_file(path: str | Path) -> np.ndarray:
    """One image file as C x H x W (TIFF via tifffile, PNG/JPEG via OpenCV)."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            image = tifffile.imread(path)
        else:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ValueError("not a readable image")
            if image.ndim == 3:
                image = cv2.cvtColor(
                    image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
                )
    except InputError:
        raise
    except Exception as error:  # tifffile and OpenCV raise many types for corrupt files
        raise InputError(str(path), f"cannot read image ({error})") from error
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(str(path), "cannot read image (no pixel data: corrupt or empty file)")
    return _channels_first(image, str(path))


def read_channels(paths: Sequence[str | Path]) -> np.ndarray:
    """Stack the channels of one or more files (same height and width) as C x H x W."""
    parts = [read_file(path) for path in paths]
    shapes = {part.shape[1:] for part in parts}
    if len(shapes) > 1:
        raise InputError(
            str(paths[0]), f"files of one image differ in size: {sorted(shapes)}", item="image"
        )
    return np.concatenate(parts, axis=0)


def pick_channel(image: np.ndarray, index: int, path: str, column: str) -> np.ndarray:
    """Channel ``index`` of a C x H x W image, or an error naming the sheet column."""
    if not 0 <= index < image.shape[0]:
        raise InputError(
            path,
            f"channel {index} requested but the image has {image.shape[0]} channel(s)",
            item=column,
        )
    return image[index]


def read_labels(path: str | Path, kind: str, ignore: int | None) -> np.ndarray:
    """Instance labels from a label image.

    ``kind='instances'``: the file already holds one id per object. ``kind='classes'``: it
    holds a class per pixel (e.g. a karyotype image); each connected component of a class
    becomes one instance. Pixels equal to ``ignore`` (e.g. 255 = overlap) are background.
    """
    labels = read_file(path)
    if labels.shape[0] != 1:
        raise InputError(str(path), f"label image must have one channel, got {labels.shape[0]}")
    labels = labels[0].astype(np.int64)
    if ignore is not None:
        labels[labels == ignore] = 0
    if kind == "instances":
        return labels.astype(np.int32)
    return connected_pieces(labels)


def connected_pieces(labels: np.ndarray) -> np.ndarray:
    """Instance labels (int32, 1..n) with every 8-connected piece of every nonzero value of
    ``labels`` an instance of its own.

    Turns a class image into instances, and makes truth for segmentation out of instance
    labels whose objects are cut in pieces, e.g. by an overlap left out of both masks as
    karyotype label images do: the network is trained and scored on what it can see.
    """
    instances = np.zeros(labels.shape, np.int32)
    count = 0
    for value in np.unique(labels[labels > 0]):
        number, components = cv2.connectedComponents(
            (labels == value).astype(np.uint8), connectivity=8
        )
        found = components > 0
        instances[found] = components[found] + count
        count += number - 1
    return instances
