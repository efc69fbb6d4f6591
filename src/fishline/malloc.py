"""glibc's allocator settings for fishline's jobs: freed memory stays in the process.

By default glibc serves a large block (above 128 KiB at first, up to 32 MiB as it adapts)
with its own ``mmap`` and hands it back to the system when it is freed; the top of the heap
is trimmed the same way. Torch allocates and frees large tensors at every batch, so each new
one is page-faulted in again, zeroed by the kernel: a job that embeds cell crops in batches
spent more CPU in the kernel than in torch. With both thresholds at 4 GiB the memory is kept
and reused; the job's peak memory is the same, it is only not returned before the job ends.
The workflow sets these for every job it starts (``Snakefile``); glibc reads them when a
process starts, so they cannot be changed from inside a running one. Measured by
``python benchmarks/malloc_env.py``.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(4 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
}


def keep_freed_memory(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`MALLOC_ENV` in ``environ`` (default: this process's, inherited by the
    processes it starts) where the user has not set them already."""
    for name, value in MALLOC_ENV.items():
        environ.setdefault(name, value)
