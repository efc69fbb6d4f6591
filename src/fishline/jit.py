"""Third-party numba kernels compiled once per machine instead of once per process.

Cellpose compiles its flow-following kernels when ``cellpose.dynamics`` is imported (about
3.4 s) and UMAP its graph and layout kernels at the first fit (about 10 s); neither asks numba
to cache them, so every Snakemake job that segments or embeds paid that again. Importing the
library through :func:`import_cached` decorates its kernels with ``cache=True``: numba keeps
them beside the library (or under ``NUMBA_CACHE_DIR``, or the user's cache folder when the
library's folder is read-only) and the next process loads them in a fraction of a second.
``make install`` runs :func:`warm_caches`, so a new environment starts with them compiled
(measured: 47 s for the first process, 8 s once cached).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

_lock = threading.Lock()


def _caching(decorator: Callable[..., Any]) -> Callable[..., Any]:
    def decorate(*args: Any, **options: Any) -> Any:
        options.setdefault("cache", True)
        return decorator(*args, **options)

    return decorate


def import_cached(name: str) -> ModuleType:
    """Import module ``name`` (e.g. ``cellpose.models``, ``umap``) with every numba kernel it
    defines while importing cached on disk; a module already imported is returned as is."""
    if name in sys.modules:
        return sys.modules[name]
    import numba

    with _lock:
        plain = numba.njit, numba.jit
        numba.njit, numba.jit = _caching(numba.njit), _caching(numba.jit)
        try:
            module = importlib.import_module(name)
        finally:
            numba.njit, numba.jit = plain
    return module


def warm_caches() -> None:
    """Compile and cache Cellpose's and UMAP's kernels once, as ``make install`` does, so
    the first jobs and tests of a new environment do not each compile them."""
    import numpy as np

    import_cached("cellpose.models")
    import_cached("cellpose.train")
    umap = import_cached("umap")
    points = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    umap.UMAP(n_neighbors=5, random_state=0).fit_transform(points)


if __name__ == "__main__":
    warm_caches()
