"""The allocator settings the workflow gives its jobs (fishline.malloc)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from fishline.malloc import MALLOC_ENV, keep_freed_memory

# 20 times: a 64 MiB array written and freed; prints the process's minor page faults
CHURN = """
import resource
import numpy as np
for _ in range(20):
    block = np.empty(64 << 20, np.uint8)
    block.fill(1)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
"""


def test_settings_fill_only_what_the_user_left_unset() -> None:
    environ = {"MALLOC_TRIM_THRESHOLD_": "0"}
    keep_freed_memory(environ)
    assert environ["MALLOC_TRIM_THRESHOLD_"] == "0"
    assert environ["MALLOC_MMAP_THRESHOLD_"] == MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator settings")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    """Under glibc's defaults each 64 MiB block is mmapped and faulted in page by page again
    (about 16,000 faults each); with the settings the first block's pages are reused. (numpy's
    huge pages are off here: with them a block faults in 2 MiB at a time, hiding the count.)"""
    plain = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    plain["NUMPY_MADVISE_HUGEPAGE"] = "0"

    def faults(environ: dict[str, str]) -> int:
        run = subprocess.run([sys.executable, "-c", CHURN], env=environ, capture_output=True)
        return int(run.stdout)

    default, kept = faults(plain), faults({**plain, **MALLOC_ENV})
    assert default > 20 * 16000 * 0.9
    assert kept < default / 5
