"""FISH signals: Gaussian spots and random-walk clusters, elastically warped, all batched.

Every signal is rendered in its own small window as a sum of Gaussians evaluated at
elastically displaced coordinates (an exact backward warp, no interpolation), cut below a
fraction of its peak, blurred, and scatter-added into the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sample_positions(
    rng: np.random.Generator, allowed: np.ndarray, owners: np.ndarray
) -> np.ndarray:
    """Uniform sub-pixel positions (x, y) inside ``allowed[owner]`` for each requested signal.

    Exact and rejection-free: allowed pixels are listed per image once and indexed by a
    uniform draw. Callers make sure every owner has at least one allowed pixel.
    """
    if len(owners) == 0:
        return np.zeros((0, 2), np.float32)
    batch, _, width = allowed.shape
    flat = np.flatnonzero(allowed)
    per_image = np.bincount(flat // (allowed.shape[1] * width), minlength=batch)
    offsets = np.concatenate([[0], np.cumsum(per_image)[:-1]])
    picks = offsets[owners] + (rng.random(len(owners)) * per_image[owners]).astype(np.int64)
    pixel = flat[picks] % (allowed.shape[1] * width)
    jitter = rng.uniform(-0.5, 0.5, (len(owners), 2))
    return np.stack([pixel % width, pixel // width], axis=1) + jitter


def random_walks(
    rng: np.random.Generator,
    allowed: np.ndarray,
    owners: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    step: tuple[float, float],
    reach: float,
) -> np.ndarray:
    """Random walks of ``lengths`` steps (2-4 px each) that never leave ``allowed``.

    Returns member offsets from each start (K x max_length x 2); unused members are NaN.
    A proposed step outside the mask, or farther than ``reach`` from the start, is refused
    and the walker stays, so a cluster stays one connected blob inside its nucleus.
    """
    count, longest = len(owners), int(lengths.max(initial=0))
    offsets = np.full((count, max(longest, 1), 2), np.nan, np.float32)
    if count == 0:
        return offsets
    _, height, width = allowed.shape
    position = starts.astype(np.float32).copy()
    for index in range(longest):
        active = index < lengths
        offsets[active, index] = position[active] - starts[active]
        angle = rng.uniform(0, 2 * math.pi, count)
        length = rng.uniform(step[0], step[1], count)
        proposal = position + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
        px = np.clip(np.rint(proposal[:, 0]).astype(int), 0, width - 1)
        py = np.clip(np.rint(proposal[:, 1]).astype(int), 0, height - 1)
        inside = allowed[owners, py, px]
        near = np.hypot(*(proposal - starts).T) <= reach
        accept = inside & near
        position[accept] = proposal[accept]
    return offsets


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """Row-normalised 1-D Gaussian smoothing matrix, so ``K @ X @ K.T`` blurs X (size x size)."""
    index = np.arange(size, dtype=np.float32)
    kernel = np.exp(-((index[:, None] - index[None, :]) ** 2) / (2 * sigma**2))
    return (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Blobs:
    """Signals to render: centres (x, y), member offsets, member sigma/peak, target slots."""

    image: np.ndarray  # (S,) batch index
    channel: np.ndarray  # (S,) channel index
    centre: np.ndarray  # (S, 2) float
    members: np.ndarray  # (S, M, 2) offsets; NaN = unused
    sigma: np.ndarray  # (S,) float
    peak: np.ndarray  # (S,) float


def single_spots(
    rng: np.random.Generator,
    allowed: np.ndarray,
    owners: np.ndarray,
    channel: int | np.ndarray,
    sigma: np.ndarray,
    peak: np.ndarray,
) -> Blobs:
    """One-member blobs (plain spots) at uniform positions inside ``allowed[owner]``."""
    count = len(owners)
    return Blobs(
        image=owners,
        channel=np.broadcast_to(channel, (count,)),
        centre=sample_positions(rng, allowed, owners),
        members=np.zeros((count, 1, 2), np.float32),
        sigma=sigma,
        peak=peak,
    )


def render_blobs(
    rng: np.random.Generator,
    blobs: Blobs,
    window: int,
    cut: float,
    warp: dict,
    out: np.ndarray,
) -> None:
    """Render all blobs in ``window`` x ``window`` tiles and add them into ``out`` (B,C,H,W).

    Per blob: sum of member Gaussians at displaced coordinates (displacement = uniform noise
    smoothed with ``warp['smoothing']`` and scaled by ``warp['scale']``), values below
    ``cut`` x peak set to 0, then a sigma-1 blur; overlapping signals add up.
    """
    count = len(blobs.image)
    if count == 0:
        return
    half = window // 2
    origin = np.rint(blobs.centre).astype(np.int64) - half
    local = (blobs.centre - origin).astype(np.float32)  # centre inside the tile
    grid = np.arange(window, dtype=np.float32)
    gx = np.broadcast_to(grid[None, None, :], (count, window, window))
    gy = np.broadcast_to(grid[None, :, None], (count, window, window))
    if warp["enabled"]:
        smooth = gaussian_matrix(window, warp["smoothing"])
        noise = rng.uniform(-1, 1, (count, 2, window, window)).astype(np.float32)
        shift = smooth @ noise @ smooth.T * np.float32(warp["scale"])
        shift *= _fold_free_factor(shift)[:, None, None, None]
        gx = gx + shift[:, 0]
        gy = gy + shift[:, 1]
    tile = np.zeros((count, window, window), np.float32)
    inv = (1.0 / (2 * blobs.sigma**2)).astype(np.float32)[:, None, None]
    for m in range(blobs.members.shape[1]):
        used = ~np.isnan(blobs.members[:, m, 0])
        if not used.any():
            continue
        cx = (local[:, 0] + np.nan_to_num(blobs.members[:, m, 0]))[:, None, None]
        cy = (local[:, 1] + np.nan_to_num(blobs.members[:, m, 1]))[:, None, None]
        value = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) * inv)
        tile += np.where(used[:, None, None], value, 0)
    tile = np.where(tile >= cut, tile, 0) * blobs.peak[:, None, None].astype(np.float32)
    blur = gaussian_matrix(window, 1.0)
    tile = blur @ tile @ blur.T
    _scatter_add(out, tile, blobs.image, blobs.channel, origin)


def _fold_free_factor(shift: np.ndarray) -> np.ndarray:
    """Per-tile factor that keeps the warp's Jacobian norm below 0.9.

    ``x -> x + d(x)`` is then one-to-one (no folding), so a connected spot stays one
    connected blob and the drawn count is the visible count; FISHPainter's unconstrained
    warp can tear a spot in two.
    """
    dx_dy, dx_dx = np.gradient(shift[:, 0], axis=(1, 2))
    dy_dy, dy_dx = np.gradient(shift[:, 1], axis=(1, 2))
    norm = np.sqrt(dx_dx**2 + dx_dy**2 + dy_dx**2 + dy_dy**2).max(axis=(1, 2))
    return np.minimum(1.0, 0.9 / np.maximum(norm, 1e-6)).astype(np.float32)


def _scatter_add(
    out: np.ndarray, tiles: np.ndarray, image: np.ndarray, channel: np.ndarray, origin: np.ndarray
) -> None:
    """Add tiles into ``out`` at their origins, dropping pixels outside the image."""
    _, channels, height, width = out.shape
    window = tiles.shape[1]
    offs = np.arange(window)
    ys = origin[:, 1, None] + offs[None, :]  # (S, w)
    xs = origin[:, 0, None] + offs[None, :]
    valid = ((ys >= 0) & (ys < height))[:, :, None] & ((xs >= 0) & (xs < width))[:, None, :]
    base = (image * channels + channel) * height * width
    flat = base[:, None, None] + ys[:, :, None] * width + xs[:, None, :]
    np.add.at(out.reshape(-1), flat[valid], tiles[valid])
