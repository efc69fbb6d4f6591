"""Batched image augmentations on the training device (no per-sample Python, no PIL).

One call augments a whole batch: a per-sample affine (rotation, flip, scaling) in one
``grid_sample``, a per-sample Gaussian blur as one grouped convolution, per-channel
intensity gains, Gaussian noise and additive intensity gradients. Every draw comes from
the given ``torch.Generator``, so a seeded run is repeatable.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("rotation", "flip", "scale", "blur", "intensity", "noise", "gradient")


def _uniform(generator: torch.Generator, low: float, high: float, shape, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def augment(
    images: torch.Tensor, settings: dict[str, Any], generator: torch.Generator
) -> torch.Tensor:
    """Augment a float batch (B x C x H x W, values in [0, 1]) with the enabled steps."""
    batch, channels, height, width = images.shape
    device = images.device
    out = images
    if any(settings[k]["enabled"] for k in ("rotation", "flip", "scale")):
        angle = torch.zeros(batch, device=device)
        if settings["rotation"]["enabled"]:
            limit = math.radians(settings["rotation"]["degrees"])
            angle = _uniform(generator, -limit, limit, (batch,), device)
        scale = torch.ones(batch, device=device)
        if settings["scale"]["enabled"]:
            scale = _uniform(generator, *settings["scale"]["range"], (batch,), device)
        flip = torch.ones(batch, device=device)
        if settings["flip"]["enabled"]:
            flip = torch.where(
                torch.rand(batch, generator=generator, device=device) < 0.5, -1.0, 1.0
            )
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1),
                torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(out.shape), align_corners=False)
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if settings["blur"]["enabled"]:
        low, high = settings["blur"]["sigma"]
        out = _blur(out, _uniform(generator, low, high, (batch,), device), high)
    if settings["intensity"]["enabled"]:
        out = out * _uniform(
            generator, *settings["intensity"]["range"], (batch, channels, 1, 1), device
        )
    if settings["gradient"]["enabled"]:
        direction = _uniform(generator, 0, 2 * math.pi, (batch, channels, 1, 1), device)
        strength = _uniform(
            generator, *settings["gradient"]["strength"], (batch, channels, 1, 1), device
        )
        ys = torch.linspace(-0.5, 0.5, height, device=device).view(1, 1, height, 1)
        xs = torch.linspace(-0.5, 0.5, width, device=device).view(1, 1, 1, width)
        ramp = xs * torch.cos(direction) + ys * torch.sin(direction) + 0.5
        out = out + strength * ramp
    if settings["noise"]["enabled"]:
        std = _uniform(generator, *settings["noise"]["std"], (batch, 1, 1, 1), device)
        out = out + std * torch.randn(out.shape, generator=generator, device=device)
    return out.clamp(0, 1)


def _blur(images: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Per-sample Gaussian blur as two grouped 1-D convolutions (one kernel per sample).

    The kernel radius follows the configured largest sigma, not the drawn ones: reading
    the draws back (``sigma.max()``) would make the host wait for the device twice a step.
    """
    batch, channels, height, width = images.shape
    radius = max(1, math.ceil(3 * max_sigma))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)
    flat = images.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=batch * channels)
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=batch * channels)
    return flat.reshape(batch, channels, height, width)
