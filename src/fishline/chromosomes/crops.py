"""Chromosome crops: every segmented instance becomes a fixed-size, long-axis-vertical,
centred crop with DAPI and the paint channels, written as a patch set (TIFF + Parquet)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.images import read_file, read_labels
from fishline.instances import match_instances
from fishline.io import atomic_outputs, encode_pages, write_stack
from fishline.logging import get_logger, progress_bar
from fishline.metaphase_sheet import load_row
from fishline.schema import setting_default, typed_settings

log = get_logger("crops")
CROP_CHANNELS = ("dapi", "red", "green")
# Truth columns copied from a painter instance table onto the crop it matches.
TRUTH_COLUMNS = (
    "chromosome",
    "partner",
    "paint",
    "segments",
    "is_aberration",
    "visible_colour_change",
)


def instance_geometry(mask: np.ndarray) -> dict[str, float]:
    """Centre, long-axis angle (degrees from the x axis), length and width of one mask.

    Length and width are the extents of the pixels projected on the principal axes, so a
    bent chromosome's length is its span, which is what must fit into the crop.
    """
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    dx, dy = xs - cx, ys - cy
    mu20, mu02, mu11 = (dx * dx).mean(), (dy * dy).mean(), (dx * dy).mean()
    theta = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    return {
        "centre_x": float(cx),
        "centre_y": float(cy),
        "angle": math.degrees(theta),
        "length": float(np.ptp(along) + 1),
        "width": float(np.ptp(across) + 1),
    }


def crop_matrix(geometry: Mapping[str, float], size: int, scale: float) -> np.ndarray:
    """Affine map from crop pixels to image pixels: long axis vertical, centre in the middle.

    The long axis direction is taken pointing down (non-negative y) so the orientation is
    canonical: a chromosome and its copy rotated by 180 degrees give the same crop.
    """
    theta = math.radians(geometry["angle"])
    down = np.array([math.cos(theta), math.sin(theta)])
    if down[1] < 0 or (down[1] == 0 and down[0] < 0):
        down = -down
    side = np.array([-down[1], down[0]])
    middle = (size - 1) / 2
    centre = np.array([geometry["centre_x"], geometry["centre_y"]])
    linear = np.stack([side, down], axis=1) / scale
    offset = centre - linear @ np.array([middle, middle])
    return np.hstack([linear, offset[:, None]])


def crop_instance(
    channels: np.ndarray,
    labels: np.ndarray,
    instance: int,
    size: int,
    fill: float,
    mask_outside: bool,
) -> tuple[np.ndarray, dict[str, float]]:
    """One instance as a C x size x size crop of ``channels`` (dtype kept) and its geometry.

    Instances longer than ``fill * size`` are shrunk to fit (never enlarged); with
    ``mask_outside`` every pixel not of this instance is zero, so neighbours do not leak in.
    """
    mask = labels == instance
    geometry = instance_geometry(mask)
    scale = min(1.0, fill * size / max(geometry["length"], 1.0))
    matrix = crop_matrix(geometry, size, scale)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    crop = np.stack(
        [cv2.warpAffine(c.astype(np.float32), matrix, (size, size), flags=flags) for c in channels]
    )
    if mask_outside:
        inside = cv2.warpAffine(mask.astype(np.float32), matrix, (size, size), flags=flags)
        crop *= inside
    top = np.iinfo(channels.dtype).max if channels.dtype.kind in "ui" else np.inf
    out = np.clip(np.rint(crop), 0, top).astype(channels.dtype)
    return out, {**geometry, "scale": scale}


def _truth_classes(path: str, instances: np.ndarray) -> np.ndarray:
    """Class value (e.g. karyotype number) of every truth instance of a class label image."""
    raw = read_file(path)[0].astype(np.int64)
    classes = np.zeros(int(instances.max()) + 1, np.int64)
    inside = instances > 0
    classes[instances[inside]] = raw[inside]
    return classes


@dataclass(frozen=True)
class ChromosomeCropSettings:
    """How chromosomes are cropped (config block ``chromosomes.crops``; each default is the
    schema's, its meaning in config/README.md): crop side ``size`` (px), the longest
    chromosome at most ``fill`` of it, zero outside the chromosome (``mask_outside``), and
    the IoU at which a crop takes a truth instance's labels (``match_iou``)."""

    size: int = setting_default("chromosomes.crops.size")
    fill: float = setting_default("chromosomes.crops.fill")
    mask_outside: bool = setting_default("chromosomes.crops.mask_outside")
    match_iou: float = setting_default("chromosomes.crops.match_iou")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> ChromosomeCropSettings:
        """The settings of a ``chromosomes.crops`` block (every key given)."""
        return typed_settings(cls, block, "chromosomes.crops")


def crop_set(
    masks_sheet: str | Path,
    settings: ChromosomeCropSettings,
    set_name: str,
    stack_out: str | Path,
    table_out: str | Path,
    instances: str | Path | None = None,
) -> pd.DataFrame:
    """Crop every predicted instance of every image in ``masks_sheet`` into one patch set.
    (Over 80 lines: cropping, the truth match of every crop and the atomic write of the
    stack share the per-image loop.)

    Where the sheet has truth masks, each crop is matched to a truth instance by IoU
    (>= ``settings.match_iou``); painter ``instances`` tables then give its truth
    (chromosome, paint, aberration) and ``label`` (normal / aberration / unmatched).
    """
    sheet = pd.read_csv(masks_sheet, sep="\t")
    truth_table = pd.read_parquet(instances) if instances is not None else None
    size, records, pages = settings.size, [], []
    names: tuple[str, ...] | None = None
    dtype = None
    for row in progress_bar(sheet.to_dict("records"), desc=f"crop {set_name}", unit="image"):
        item = load_row(row, masks_sheet)
        present = ("dapi", *[c for c in ("red", "green") if c in item.paint])
        if names is None:
            names = present
        elif present != names:
            raise InputError(
                str(masks_sheet),
                f"channels {present} differ from the first image's {names}",
                item=row["sample"],
            )
        channels = np.stack([item.dapi, *[item.paint[c] for c in present[1:]]])
        if dtype is None:
            dtype = channels.dtype
        channels = channels.astype(dtype)
        pred = read_labels(row["pred"], "instances", None)
        matches = pd.DataFrame({"truth": [], "pred": [], "iou": []})
        classes = None
        if item.truth is not None:
            matches = match_instances(item.truth, pred, settings.match_iou)
            if row.get("mask_kind") == "classes":
                classes = _truth_classes(row["mask"], item.truth)
        matched = matches.set_index("pred")
        border = set(np.unique(np.concatenate([pred[0], pred[-1], pred[:, 0], pred[:, -1]])))
        for instance in np.unique(pred[pred > 0]):
            crop, geometry = crop_instance(
                channels, pred, int(instance), size, settings.fill, settings.mask_outside
            )
            ys, xs = np.nonzero(pred == instance)
            record: dict[str, Any] = {
                "set": set_name,
                "sample": row["sample"],
                "instance": int(instance),
                "bbox_y0": int(ys.min()),
                "bbox_x0": int(xs.min()),
                "bbox_y1": int(ys.max()) + 1,
                "bbox_x1": int(xs.max()) + 1,
                "area": len(ys),
                **{k: round(v, 3) for k, v in geometry.items()},
                "touches_border": bool(instance in border),
                "truth_instance": 0,
                "truth_iou": 0.0,
            }
            if instance in matched.index:
                truth_id = int(matched.loc[instance, "truth"])
                record["truth_instance"] = truth_id
                record["truth_iou"] = round(float(matched.loc[instance, "iou"]), 4)
                if classes is not None:
                    record["truth_class"] = int(classes[truth_id])
            records.append(record)
            pages.append(crop)
    table = pd.DataFrame(records)
    if truth_table is not None and len(table):
        table = _attach_truth(table, truth_table)
    table.insert(0, "index", np.arange(len(table)))
    stack = (
        np.stack(pages) if pages else np.zeros((0, len(names or ("dapi",)), size, size), np.uint8)
    )
    with atomic_outputs(stack_out, table_out) as (stack_temp, table_temp):
        write_stack(
            stack_temp,
            encode_pages(stack, "zlib"),
            stack.shape,
            stack.dtype,
            names or ("dapi",),
            "zlib",
        )
        table.to_parquet(table_temp, index=False)
    log.info("%s: %d crops from %d images", set_name, len(table), len(sheet))
    return table


def _attach_truth(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Join painter truth onto crops by (sample, truth instance); label the unmatched."""
    keyed = truth.rename(columns={"spread": "sample", "instance": "truth_instance"})
    columns = ["sample", "truth_instance", *[c for c in TRUTH_COLUMNS if c in keyed]]
    out = table.merge(keyed[columns], on=["sample", "truth_instance"], how="left")
    out["label"] = np.where(
        out["truth_instance"] == 0,
        "unmatched",
        np.where(out["is_aberration"].fillna(False).astype(bool), "aberration", "normal"),
    )
    return out
