"""A faithful per-image re-implementation of the FISHPainter algorithm (baseline only).

Written from the description in shared/notes/fish.md, not from its code: one image at a
time, every signal painted on a full-size canvas, warped by its own full-size elastic
field and blurred, as the original does. Used by ``paint_fish.py`` as the speed baseline.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIZE = 128


def _fit(image: np.ndarray) -> np.ndarray:
    """Centre-crop or zero-pad a 2-D array to SIZE x SIZE."""
    out = np.zeros((SIZE, SIZE), image.dtype)
    h, w = image.shape
    sy, sx = max((h - SIZE) // 2, 0), max((w - SIZE) // 2, 0)
    crop = image[sy : sy + SIZE, sx : sx + SIZE]
    oy, ox = (SIZE - crop.shape[0]) // 2, (SIZE - crop.shape[1]) // 2
    out[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    return out


def _background(rng: np.random.Generator, library: list[tuple[np.ndarray, np.ndarray]]):
    image, mask = library[rng.integers(len(library))]
    angle, scale = rng.uniform(0, 360), rng.uniform(0.75, 1.5)
    image = ndimage.zoom(ndimage.rotate(image, angle, reshape=False, order=1), scale, order=1)
    mask = (
        ndimage.zoom(
            ndimage.rotate(mask.astype(float), angle, reshape=False, order=0), scale, order=0
        )
        > 0.5
    )
    mask = _fit(mask)
    return _fit(image) * mask, mask


def _warp(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    shape = canvas.shape
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), 2) * 20
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), 2) * 20
    y, x = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    warped = ndimage.map_coordinates(canvas, [y + dy, x + dx], order=1)
    return ndimage.gaussian_filter(warped, 1)


def _spot(rng: np.random.Generator, centre: np.ndarray, sigma: float) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    g = np.exp(-((x - centre[1]) ** 2 + (y - centre[0]) ** 2) / (2 * sigma**2))
    g[g < 0.2] = 0
    return g * rng.uniform(0.5, 1)


def _cluster(rng: np.random.Generator, mask: np.ndarray, start: np.ndarray, size: int):
    canvas = np.zeros((SIZE, SIZE))
    position = start.astype(float)
    for _ in range(size):
        canvas[int(position[0]), int(position[1])] = 1
        step = rng.uniform(2, 4) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        proposal = position + step
        py, px = np.clip(proposal.astype(int), 0, SIZE - 1)
        if mask[py, px]:
            position = proposal
    blob = ndimage.gaussian_filter(canvas, rng.uniform(1, 2))
    return blob / blob.max() * rng.uniform(0.5, 1)


def paint_one(rng: np.random.Generator, library: list, spots: int, clusters: int) -> np.ndarray:
    """One 3 x 128 x 128 image: DAPI background, 2 red spots, green spots and clusters."""
    dapi, mask = _background(rng, library)
    sigma = rng.uniform(1, 2)
    inner = ndimage.binary_erosion(mask, iterations=int(2 * sigma))
    points = np.argwhere(inner if inner.any() else mask)
    image = np.zeros((3, SIZE, SIZE))
    image[2] = dapi
    for channel, count in ((0, 2), (1, spots)):
        for _ in range(count):
            centre = points[rng.integers(len(points))]
            image[channel] += _warp(rng, _spot(rng, centre, sigma))
    for _ in range(clusters):
        start = points[rng.integers(len(points))]
        image[1] += _warp(rng, _cluster(rng, mask, start, int(rng.integers(6, 13))))
    return np.clip(image, 0, 1)
