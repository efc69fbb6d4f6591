"""Numba kernels of libraries imported through fishline.jit are cached on disk."""

from __future__ import annotations

import sys
from pathlib import Path

import numba
import pytest

from fishline.jit import import_cached

KERNELS = """
import numba
from numba import njit


@njit
def add_one(x):
    return x + 1


@numba.jit(nopython=True)
def double(x):
    return 2 * x
"""


def test_kernels_are_cached_beside_the_module_and_numba_is_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fishline_jit_probe.py").write_text(KERNELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delitem(sys.modules, "fishline_jit_probe", raising=False)
    plain = numba.njit, numba.jit

    probe = import_cached("fishline_jit_probe")

    assert (probe.add_one(41), probe.double(21)) == (42, 42)
    cached = sorted(
        p.name.split(".")[1].split("-")[0] for p in (tmp_path / "__pycache__").glob("*.nbi")
    )
    assert cached == ["add_one", "double"]
    assert (numba.njit, numba.jit) == plain
    assert import_cached("fishline_jit_probe") is probe
