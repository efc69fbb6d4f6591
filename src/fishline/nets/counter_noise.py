"""Counter-based normal noise on the sampling device: per-sample draws that do not depend
on the batch, with no host generator and no copy to the device per step (BBDM sampling)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2^32 for int64 tensors holding 32-bit values, without int64
    overflow: the constant is applied in two 16-bit halves."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & _MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer mix (C. Wellons' "lowbias32") on int64 tensors."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class CounterNormal:
    """Per-sample N(0, 1) draws that depend only on (sample seed, draw number, element).

    Each value is an integer hash of the three, turned into a normal by Box-Muller, all
    computed with tensor operations where the samples live: no per-sample generator on
    the host and no copy to the device per draw. A sample's noise therefore does not
    depend on the batch it is in or its position there; its integers are the same on
    every device (the floats to rounding).
    """

    def __init__(self, seeds: Sequence[int], shape: Sequence[int], device: torch.device) -> None:
        seed = torch.tensor([int(s) for s in seeds], dtype=torch.int64, device=device)
        self._keys = hash32(hash32(seed & _MASK32) ^ (seed >> 32))[:, None]
        self._shape = tuple(shape)
        self._size = math.prod(self._shape)
        pairs = (self._size + 1) // 2  # Box-Muller turns two uniforms into two normals
        self._counters = hash32(torch.arange(2 * pairs, dtype=torch.int64, device=device))[None]
        self._draws = 0

    def __call__(self) -> torch.Tensor:
        """The next draw: one ``len(seeds) x shape`` float32 tensor."""
        draw = int(hash32(torch.tensor(self._draws)))  # on the host: no copy to the device
        key = hash32(self._keys ^ draw)
        self._draws += 1
        bits = hash32(self._counters + key)
        uniform = ((bits >> 8).float() + 0.5) / float(1 << 24)  # in (0, 1), never 0
        radius_u, angle_u = uniform.chunk(2, dim=1)
        radius, angle = torch.sqrt(-2 * torch.log(radius_u)), 2 * math.pi * angle_u
        normal = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
        return normal[:, : self._size].reshape(len(self._keys), *self._shape)
