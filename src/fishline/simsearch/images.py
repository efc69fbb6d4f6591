"""SimSearch image sets: sheet reading, set-wide percentile rescaling, channel correlation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import read_channels, split_paths
from fishline.sheets import read_sample_sheet

TRUTH_COLUMNS = ("x", "y", "class")


@dataclass
class ImageSet:
    """Rescaled images of one sheet (float32, C x H x W in [0, 1]) with names and truth.

    ``scaling`` holds the per-channel (low, high) that map raw intensities to [0, 1];
    ``truth`` maps an image name to its ground-truth points (x, y, class), when given.
    """

    sheet: str
    channels: list[str]
    images: dict[str, np.ndarray]
    scaling: np.ndarray
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Image names in sheet order."""
        return list(self.images)

    def shape(self, name: str) -> tuple[int, int]:
        """(height, width) of one image."""
        return tuple(self.images[name].shape[1:])  # type: ignore[return-value]


def set_scaling(raw: list[np.ndarray]) -> np.ndarray:
    """Per-channel (low, high) for the whole set (notes: one gentle normalisation).

    Each image contributes its (5, 95) percentiles per channel; the (0.5, 99.5) percentiles
    of those values over the set are the low and high that map to 0 and 1.
    """
    per_image = np.stack(
        [np.percentile(image.reshape(image.shape[0], -1), [5, 95], axis=1).T for image in raw]
    )  # images x channels x 2
    values = per_image.transpose(1, 0, 2).reshape(per_image.shape[1], -1)
    low, high = np.percentile(values, [0.5, 99.5], axis=1)
    high = np.where(high > low, high, low + 1.0)
    return np.stack([low, high], axis=1).astype(np.float32)


def rescale(image: np.ndarray, scaling: np.ndarray) -> np.ndarray:
    """Map raw intensities to [0, 1] with the set's per-channel (low, high)."""
    low = scaling[:, 0, None, None]
    high = scaling[:, 1, None, None]
    return np.clip((image.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def channel_correlation(image_set: ImageSet) -> pd.DataFrame:
    """Mean Pearson correlation between channels over the set's images (channels x channels).

    Highly correlated channels carry the same information; the user may drop one.
    """
    count = len(image_set.channels)
    total = np.zeros((count, count))
    for image in image_set.images.values():
        flat = image.reshape(count, -1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            matrix = np.corrcoef(flat) if count > 1 else np.ones((1, 1))
        total += np.nan_to_num(matrix, nan=0.0)
    mean = total / max(len(image_set.images), 1)
    return pd.DataFrame(mean, index=image_set.channels, columns=image_set.channels)


def read_truth(path: str, sheet: str, image: str) -> pd.DataFrame:
    """Ground-truth points of one image (x, y, class), or an error naming the file."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(path, f"cannot read ground-truth points: {error}") from error
    missing = [column for column in TRUTH_COLUMNS if column not in frame.columns]
    if missing:
        raise InputError(sheet, f"{path} lacks column(s) {missing}", item=f"image {image}, points")
    frame = frame[list(TRUTH_COLUMNS)].copy()
    frame["class"] = frame["class"].astype(str)
    return frame


def load_image_set(sheet: str | Path, channels: list[str] | None = None) -> ImageSet:
    """Read every image of a SimSearch sheet, keep ``channels`` (all when None), rescale.

    Errors name the sheet, the image and the problem (unknown channel, channel count that
    disagrees with the names, differing channel names between rows).
    """
    sheet = str(sheet)
    table = read_sample_sheet(sheet, "simsearch_sheet")
    names_of = {row["image"]: row["channels"].split(",") for _, row in table.iterrows()}
    first = next(iter(names_of.values()))
    for image, names in names_of.items():
        if names != first:
            raise InputError(
                sheet, f"channels {names} differ from the first row's {first}", item=image
            )
    wanted = list(channels) if channels else first
    unknown = [name for name in wanted if name not in first]
    if unknown:
        raise InputError(sheet, f"unknown channel(s) {unknown}; the sheet has {first}")
    pick = [first.index(name) for name in wanted]
    raw: dict[str, np.ndarray] = {}
    truth: dict[str, pd.DataFrame] = {}
    for _, row in table.iterrows():
        image = read_channels(split_paths(row["path"]))
        if image.shape[0] != len(first):
            raise InputError(
                sheet,
                f"the file has {image.shape[0]} channel(s) but channels names {len(first)}",
                item=row["image"],
            )
        raw[row["image"]] = image[pick]
        points = row.get("points")
        if isinstance(points, str) and points:
            truth[row["image"]] = read_truth(points, sheet, row["image"])
    scaling = set_scaling(list(raw.values()))
    images = {name: rescale(image, scaling) for name, image in raw.items()}
    return ImageSet(sheet, wanted, images, scaling, truth)


def split_names(
    names: list[str], displayed: int | list[str], test: int | list[str], where: str
) -> dict[str, list[str]]:
    """Assign a sheet's images to the displayed, noisy (not displayed) and test roles.

    An integer takes that many images in sheet order (displayed from the start, test from
    the end); a list names them. Every image has one role; the noisy set may be empty.
    """

    def pick(value: int | list[str], pool: list[str], from_end: bool, key: str) -> list[str]:
        if isinstance(value, int):
            if value > len(pool):
                raise InputError(
                    where, f"asks for {value} images but only {len(pool)} are left", item=key
                )
            return pool[len(pool) - value :] if from_end else pool[:value]
        unknown = [name for name in value if name not in pool]
        if unknown:
            raise InputError(
                where, f"names images not in the sheet (or taken): {unknown}", item=key
            )
        return list(value)

    shown = pick(displayed, names, False, "displayed")
    if not shown:
        raise InputError(where, "at least one image must be displayed", item="displayed")
    rest = [name for name in names if name not in shown]
    held_out = pick(test, rest, True, "test")
    noisy = [name for name in rest if name not in held_out]
    return {"displayed": shown, "noisy": noisy, "test": held_out}
