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


def _channels_first(image: np.ndarray, path: str) -> np.ndarray:
    """C x H x W from a 2-D image, a channel-first stack or an RGB(A) channel-last image."""
    if image.ndim == 2:
        return image[None]
    if image.ndim == 3:
        if image.shape[-1] in (3, 4) and image.shape[0] not in (3, 4):
            return np.moveaxis(image, -1, 0)
        return image
    raise InputError(path, f"expected a 2-D image or a channel stack, got shape {image.shape}")


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
