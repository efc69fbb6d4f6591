"""Small helpers that draw from configured ranges with one ``numpy.random.Generator``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Range = float | int | Sequence[float]


def bounds(value: Range) -> tuple[float, float]:
    """``3`` -> (3, 3); ``[2, 7]`` -> (2, 7)."""
    if isinstance(value, int | float):
        return float(value), float(value)
    low, high = value
    return float(low), float(high)


def uniform(rng: np.random.Generator, value: Range, size: int | tuple[int, ...]) -> np.ndarray:
    """Uniform float32 draws in a configured range (a scalar gives a constant)."""
    low, high = bounds(value)
    return rng.uniform(low, high, size).astype(np.float32)


def integers(rng: np.random.Generator, value: Range, size: int) -> np.ndarray:
    """Uniform integer draws in an inclusive configured range."""
    low, high = bounds(value)
    return rng.integers(int(low), int(high) + 1, size)


def weighted_names(rng: np.random.Generator, weights: Mapping[str, float], size: int) -> list[str]:
    """``size`` names drawn by their weights. The names are taken in sorted order, so the
    draws do not depend on how the mapping is written (the validated config sorts its keys,
    the schema's defaults keep the written order)."""
    names = sorted(weights)
    shares = np.array([weights[name] for name in names], float)
    return [names[i] for i in rng.choice(len(names), size, p=shares / shares.sum())]
