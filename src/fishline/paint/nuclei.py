"""Nucleus backgrounds (DAPI channel + mask): procedural or from a user's crop library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile

from fishline.errors import InputError
from fishline.paint.draws import integers, uniform
from fishline.paint.noise import band_noise
from fishline.sheets import read_sample_sheet


@dataclass
class Nuclei:
    """A batch of nuclei: DAPI intensities in [0, 1], masks and where each came from."""

    dapi: np.ndarray  # (B, H, W) float32
    mask: np.ndarray  # (B, H, W) bool
    diameter: np.ndarray  # (B,) float32, equivalent-circle diameter in px
    source: np.ndarray  # (B,) object: "procedural" or the library item id


def procedural_nuclei(
    rng: np.random.Generator,
    size: int,
    params: dict[str, Any],
    centres: np.ndarray,
) -> Nuclei:
    """Draw irregular, textured DAPI nuclei centred at ``centres`` (B x 2, x/y in px).

    Shape: an ellipse whose radius is modulated by low harmonics (lobes, dents); texture:
    band-pass chromatin noise; 0-N dark nucleoli; brightness, shading and a soft edge.
    """
    count = len(centres)
    radius = uniform(rng, params["diameter"], count) / 2
    aspect = uniform(rng, params["aspect"], count)
    angle = rng.uniform(0, math.pi, count).astype(np.float32)
    harmonics = np.arange(2, 6, dtype=np.float32)  # lobes: 2 (oval) ... 5
    amplitude = (
        params["irregularity"] * rng.standard_normal((count, 4)).astype(np.float32) / harmonics
    )
    phase = rng.uniform(0, 2 * math.pi, (count, 4)).astype(np.float32)

    # Work only inside the box that can hold any of the nuclei (the outline never exceeds
    # radius * (1 + sum |amplitude|)): for centred patches that is about 60 % of the pixels.
    reach = float((radius * (1 + np.abs(amplitude).sum(axis=1))).max(initial=0)) + 3
    x0, y0 = np.clip(np.floor(centres.min(axis=0) - reach).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(centres.max(axis=0) + reach).astype(int) + 1, 0, size)
    dx = np.arange(x0, x1, dtype=np.float32)[None, None, :] - centres[:, 0, None, None]
    dy = np.arange(y0, y1, dtype=np.float32)[None, :, None] - centres[:, 1, None, None]
    dx, dy = dx.astype(np.float32), dy.astype(np.float32)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = dx * cos + dy * sin
    v = (-dx * sin + dy * cos) / aspect[:, None, None]
    rho = np.maximum(np.hypot(u, v), 1e-6)
    # cos/sin of k*theta by the angle-addition recurrence: no arctan2, no per-k cos.
    cos_1, sin_1 = u / rho, v / rho
    cos_k, sin_k = cos_1, sin_1
    outline = np.ones_like(rho)
    for k in range(4):
        cos_k, sin_k = cos_k * cos_1 - sin_k * sin_1, sin_k * cos_1 + cos_k * sin_1
        a = amplitude[:, k, None, None]
        outline += a * (
            np.cos(phase[:, k])[:, None, None] * cos_k - np.sin(phase[:, k])[:, None, None] * sin_k
        )
    outline *= radius[:, None, None]
    relative = rho / outline
    mask = relative < 1.0
    edge = np.clip(0.5 - (rho - outline) / 2.4, 0.0, 1.0)  # 2.4 px soft rim

    texture = band_noise(rng, (count, y1 - y0, x1 - x0), 0.04, 0.35)
    chromatin = np.clip(1.0 + params["texture"] * texture, 0.05, None)
    shading = 1.0 + uniform(rng, (-0.1, 0.25), count)[:, None, None] * (1 - relative**2)
    shading += uniform(rng, (-0.15, 0.15), count)[:, None, None] * (u / radius[:, None, None])
    dapi = edge * chromatin * np.clip(shading, 0.3, None)
    dapi *= _nucleoli(rng, params["nucleoli"], u, v, radius)
    # peak brightness = the drawn intensity, so DAPI never clips on its own
    peak = dapi.reshape(count, -1).max(axis=1, initial=0.0)
    dapi *= (uniform(rng, params["intensity"], count) / np.maximum(peak, 1e-6))[:, None, None]
    full_dapi = np.zeros((count, size, size), np.float32)
    full_mask = np.zeros((count, size, size), bool)
    full_dapi[:, y0:y1, x0:x1] = np.clip(dapi, 0, 1)
    full_mask[:, y0:y1, x0:x1] = mask
    area = full_mask.sum(axis=(1, 2))
    return Nuclei(
        dapi=full_dapi,
        mask=full_mask,
        diameter=(2 * np.sqrt(area / math.pi)).astype(np.float32),
        source=np.full(count, "procedural", dtype=object),
    )


def _nucleoli(
    rng: np.random.Generator, count_range: Any, u: np.ndarray, v: np.ndarray, radius: np.ndarray
) -> np.ndarray:
    """Multiplicative darkening by 0-N nucleoli (dim round bodies inside the nucleus)."""
    count = len(radius)
    numbers = integers(rng, count_range, count)
    most = int(numbers.max(initial=0))
    factor = np.ones(u.shape, dtype=np.float32)
    if most == 0:
        return factor
    place_r = radius[:, None] * np.sqrt(uniform(rng, (0, 0.3), (count, most)))
    place_a = rng.uniform(0, 2 * math.pi, (count, most)).astype(np.float32)
    size = radius[:, None] * uniform(rng, (0.1, 0.2), (count, most))
    depth = uniform(rng, (0.25, 0.5), (count, most)) * (np.arange(most) < numbers[:, None])
    for j in range(most):
        cu = (place_r[:, j] * np.cos(place_a[:, j]))[:, None, None]
        cv = (place_r[:, j] * np.sin(place_a[:, j]))[:, None, None]
        dist2 = (u - cu) ** 2 + (v - cv) ** 2
        factor *= 1 - depth[:, j, None, None] * np.exp(-dist2 / (2 * size[:, j, None, None] ** 2))
    return factor


@dataclass
class NucleusLibrary:
    """User nucleus crops (DAPI image + mask), cropped to their mask's bounding box."""

    ids: list[str]
    images: list[np.ndarray]  # float32 in [0, 1]
    masks: list[np.ndarray]  # bool

    @classmethod
    def from_sheet(cls, sheet: str | Path) -> NucleusLibrary:
        """Load and check every row of a nucleus sample sheet (columns id, image, mask)."""
        table = read_sample_sheet(sheet, "nuclei_sheet")
        ids, images, masks = [], [], []
        for row in table.itertuples():
            image = _read_plane(row.image, row.id)
            mask = _read_plane(row.mask, row.id) > 0
            if image.shape != mask.shape:
                raise InputError(
                    str(row.mask),
                    f"mask shape {mask.shape} differs from image shape {image.shape}",
                    item=row.id,
                )
            if not mask.any():
                raise InputError(str(row.mask), "mask is empty", item=row.id)
            ys, xs = np.nonzero(mask)
            box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            crop = image[box] * mask[box]
            peak = float(crop.max())
            if peak <= 0:
                raise InputError(str(row.image), "image is black inside its mask", item=row.id)
            ids.append(str(row.id))
            images.append((crop / peak).astype(np.float32))
            masks.append(mask[box])
        return cls(ids, images, masks)

    def draw(
        self,
        rng: np.random.Generator,
        size: int,
        params: dict[str, Any],
        centres: np.ndarray,
    ) -> Nuclei:
        """Place randomly rotated and scaled library nuclei at ``centres``."""
        count = len(centres)
        picks = rng.integers(0, len(self.ids), count)
        angles = rng.uniform(0, 360, count)
        scales = uniform(rng, params["library_scale"], count)
        brightness = uniform(rng, params["intensity"], count)
        dapi = np.zeros((count, size, size), np.float32)
        mask = np.zeros((count, size, size), bool)
        for i, pick in enumerate(picks):
            image, crop_mask = self.images[pick], self.masks[pick]
            centre_in = ((image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2)
            matrix = cv2.getRotationMatrix2D(centre_in, float(angles[i]), float(scales[i]))
            matrix[:, 2] += centres[i] - np.asarray(centre_in)
            dapi[i] = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
            warped = cv2.warpAffine(
                crop_mask.astype(np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST
            )
            mask[i] = warped > 0
        dapi *= mask * brightness[:, None, None]
        area = mask.sum(axis=(1, 2))
        return Nuclei(
            dapi=dapi,
            mask=mask,
            diameter=(2 * np.sqrt(area / math.pi)).astype(np.float32),
            source=np.asarray([self.ids[p] for p in picks], dtype=object),
        )


def _read_plane(path: str, item: str) -> np.ndarray:
    """Read a 2-D image as float32, with a clear error for unreadable or non-2-D files."""
    try:
        data = tifffile.imread(path)
    except Exception as error:  # tifffile raises several types for corrupt files
        raise InputError(str(path), f"cannot read TIFF ({error})", item=item) from error
    data = np.squeeze(data)
    if data.ndim != 2:
        raise InputError(str(path), f"expected a 2-D image, got shape {data.shape}", item=item)
    return data.astype(np.float32)
