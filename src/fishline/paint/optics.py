"""Microscope realism shared by patches and fields: haze, debris, blur, glow, crosstalk,
illumination, exposure, camera.

Each knob is switchable (``enabled``) and records what it drew so the table can say which
image got which setting.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fishline.paint.draws import integers, uniform
from fishline.paint.noise import band_noise, standard_normal
from fishline.paint.signals import render_blobs, single_spots

RED, GREEN, DAPI = 0, 1, 2


def add_haze(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Out-of-focus glow: a very smooth positive field per channel; returns its levels."""
    batch, channels, height, width = images.shape
    levels = uniform(rng, knob["level"], (batch, channels))
    levels[:, DAPI] *= knob["dapi_fraction"]
    field = band_noise(rng, (batch, channels, height, width), 0.0, 4.0 / height, unit=True)
    images += levels[:, :, None, None] * field
    return levels


def add_debris(
    rng: np.random.Generator,
    images: np.ndarray,
    nucleus_mask: np.ndarray,
    knob: dict[str, Any],
    warp: dict[str, Any],
) -> np.ndarray:
    """Bright irregular specks outside nuclei, in the probe channels; returns counts."""
    batch = images.shape[0]
    counts = integers(rng, knob["count"], batch)
    outside = ~nucleus_mask
    counts[outside.sum(axis=(1, 2)) == 0] = 0
    owners = np.repeat(np.arange(batch), counts)
    total = len(owners)
    channel = rng.integers(0, 2, total)
    sigma = uniform(rng, knob["sigma"], total)
    peak = uniform(rng, knob["intensity"], total)
    blobs = single_spots(rng, outside, owners, channel, sigma, peak)
    render_blobs(rng, blobs, 25, 0.1, warp, images)
    return counts


def blur(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Gaussian point-spread blur with a per-image sigma; returns the sigmas."""
    sigmas = uniform(rng, knob["sigma"], images.shape[0])
    for index, sigma in enumerate(sigmas):
        for channel in range(images.shape[1]):
            images[index, channel] = cv2.GaussianBlur(
                images[index, channel], (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT
            )
    return sigmas


def add_glow(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Scattered and out-of-focus light around every object: a wide blur of each image added
    to it, so bright nuclei glow over the background and their neighbours while the Gaussian
    point spread (``blur``) keeps the edges sharp. Returns the levels."""
    levels = uniform(rng, knob["level"], images.shape[0])
    sigmas = uniform(rng, knob["sigma"], images.shape[0])
    for index, (level, sigma) in enumerate(zip(levels, sigmas, strict=True)):
        for channel in range(images.shape[1]):
            wide = cv2.GaussianBlur(
                images[index, channel], (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT
            )
            images[index, channel] += float(level) * wide
    return levels


def add_crosstalk(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Bleed-through: a fraction of the green channel seen in the red one (the green
    fluorophore's emission tail reaches the red filter); returns the fractions."""
    fractions = uniform(rng, knob["fraction"], images.shape[0])
    images[:, RED] += fractions[:, None, None] * images[:, GREEN]
    return fractions


def illuminate(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Uneven illumination: brightness falls off linearly, by ``falloff`` per 1000 px, in a
    random direction through the image centre (so a field loses more than one of its
    patches); every channel is multiplied. Returns the falloffs."""
    batch, _, height, width = images.shape
    falloff = uniform(rng, knob["falloff"], batch)
    angle = rng.uniform(0, 2 * np.pi, batch)
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    for index in range(batch):
        along = (xs - width / 2) * np.cos(angle[index]) + (ys - height / 2) * np.sin(angle[index])
        images[index] *= np.clip(1.0 - falloff[index] * along / 1000.0, 0.0, None)[None]
    return falloff


def expose(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Exposure gain: with saturation on, bright clusters clip at full scale.

    With the knob off, images whose signals add above 1 are scaled down instead, so no
    pixel saturates. Returns the gains.
    """
    batch = images.shape[0]
    if knob["enabled"]:
        gains = uniform(rng, knob["exposure"], batch)
    else:
        gains = 1.0 / np.maximum(images.reshape(batch, -1).max(axis=1), 1.0)
    images *= gains[:, None, None, None].astype(np.float32)
    return gains.astype(np.float32)


def add_offset(rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]) -> np.ndarray:
    """Camera/background offset per channel; returns the offsets."""
    offsets = uniform(rng, knob["level"], images.shape[:2])
    images += offsets[:, :, None, None]
    return offsets


def add_camera_noise(
    rng: np.random.Generator, images: np.ndarray, knob: dict[str, Any]
) -> np.ndarray:
    """Poisson-Gaussian camera noise; returns photons at full scale per image.

    Shot noise uses its Gaussian limit (variance = signal / photons), accurate at the tens
    to thousands of photons of fluorescence cameras and ~10x faster than exact Poisson
    draws; read noise is Gaussian with a per-image sigma.
    """
    batch = images.shape[0]
    photons = uniform(rng, knob["photons"], batch)[:, None, None, None]
    read = uniform(rng, knob["read_noise"], batch)[:, None, None, None]
    shot = np.sqrt(np.maximum(images, 0) / photons)
    images += (shot + read) * standard_normal(rng, images.shape)
    return photons.ravel()


def apply_optics(
    rng: np.random.Generator,
    images: np.ndarray,
    nucleus_mask: np.ndarray,
    realism: dict[str, Any],
    warp: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Apply every enabled realism knob in physical order; returns per-image draws."""
    record: dict[str, np.ndarray] = {}

    def on(knob: str) -> bool:  # the metaphase painter lists only the whole-image knobs
        return bool(realism.get(knob, {}).get("enabled", False))

    if on("haze"):
        levels = add_haze(rng, images, realism["haze"])
        record["haze_level"] = levels[:, :2].max(axis=1)
    if on("debris"):
        record["debris"] = add_debris(rng, images, nucleus_mask, realism["debris"], warp)
    if on("blur"):
        record["blur_sigma"] = blur(rng, images, realism["blur"])
    if on("glow"):
        record["glow_level"] = add_glow(rng, images, realism["glow"])
    if on("crosstalk"):
        record["crosstalk"] = add_crosstalk(rng, images, realism["crosstalk"])
    if on("illumination"):
        record["illumination_falloff"] = illuminate(rng, images, realism["illumination"])
    record["exposure"] = expose(rng, images, realism["saturation"])
    if on("background_offset"):
        record["offset"] = add_offset(rng, images, realism["background_offset"]).mean(axis=1)
    if on("camera_noise"):
        record["photons"] = add_camera_noise(rng, images, realism["camera_noise"])
    return record


def quantise(images: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1] and store with ``bit_depth`` levels (uint8 for 8, uint16 for 12/16)."""
    top = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.rint(np.clip(images, 0, 1) * top).astype(dtype)
