"""A compact conditional UNet for the Brownian-bridge diffusion model.

Width (base channels), depth (channel multipliers, one entry per resolution), residual
blocks per level and self-attention (per level) are configurable, so the same class gives
a CPU-sized net of about a million parameters and a GPU-sized one. The input is the noisy
image concatenated with the condition along channels; the time step enters through a
sinusoidal embedding added inside every residual block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(channels, 8)
    return nn.GroupNorm(groups, channels)


def timestep_embedding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B x dim) of integer time steps (B)."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=steps.device, dtype=torch.float32) / half
    )
    angles = steps.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added in between, 1x1 skip."""

    def __init__(self, channels_in: int, channels_out: int, time_dim: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.time = nn.Linear(time_dim, channels_out)
        self.norm2 = _norm(channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.skip = (
            nn.Conv2d(channels_in, channels_out, 1)
            if channels_in != channels_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x`` given the time embedding."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(time))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over all pixels of a feature map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + attention(x)."""
        batch, channels, height, width = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(batch, 3, channels, height * width).unbind(1)
        h = F.scaled_dot_product_attention(
            q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None]
        )[:, 0]
        return x + self.out(h.transpose(1, 2).reshape(batch, channels, height, width))


class UNet(nn.Module):
    """Conditional UNet: (x_t, condition, t) -> prediction with ``out_channels`` channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base: int,
        multipliers: Sequence[int],
        blocks: int,
        attention: Sequence[bool],
        dropout: float,
        middle_attention: bool,
    ) -> None:
        super().__init__()
        if len(attention) != len(multipliers):
            raise ValueError("attention needs one entry per level (multipliers)")
        time_dim = 4 * base
        self.base = base
        self.time = nn.Sequential(
            nn.Linear(base, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.stem = nn.Conv2d(in_channels, base, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [base]
        channels = base
        for level, multiplier in enumerate(multipliers):
            for _ in range(blocks):
                block = nn.ModuleList([ResBlock(channels, base * multiplier, time_dim, dropout)])
                channels = base * multiplier
                if attention[level]:
                    block.append(Attention(channels))
                self.down.append(block)
                skips.append(channels)
            if level < len(multipliers) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(channels, channels, 3, 2, 1)]))
                skips.append(channels)
        self.middle = nn.ModuleList(
            [
                ResBlock(channels, channels, time_dim, dropout),
                Attention(channels) if middle_attention else nn.Identity(),
                ResBlock(channels, channels, time_dim, dropout),
            ]
        )
        self.up = nn.ModuleList()
        for level, multiplier in reversed(list(enumerate(multipliers))):
            for _ in range(blocks + 1):
                block = nn.ModuleList(
                    [ResBlock(channels + skips.pop(), base * multiplier, time_dim, dropout)]
                )
                channels = base * multiplier
                if attention[level]:
                    block.append(Attention(channels))
                self.up.append(block)
            if level > 0:
                self.up.append(
                    nn.ModuleList(
                        [nn.Upsample(scale_factor=2), nn.Conv2d(channels, channels, 3, 1, 1)]
                    )
                )
        self.head = nn.Sequential(
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.downsampling = 2 ** (len(multipliers) - 1)

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor, steps: torch.Tensor
    ) -> torch.Tensor:
        """Predict from the noisy image ``x``, the condition and integer time ``steps``."""
        if x.shape[-1] % self.downsampling or x.shape[-2] % self.downsampling:
            raise ValueError(
                f"image size {tuple(x.shape[-2:])} is not divisible by {self.downsampling}"
            )
        time = self.time(timestep_embedding(steps, self.base))
        h = self.stem(torch.cat([x, condition], dim=1))
        hs = [h]
        for block in self.down:
            if isinstance(block[0], ResBlock):
                h = block[0](h, time)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[0](h)
            hs.append(h)
        h = self.middle[0](h, time)
        h = self.middle[1](h)
        h = self.middle[2](h, time)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = block[0](torch.cat([h, hs.pop()], dim=1), time)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[1](block[0](h))
        return self.head(h)
