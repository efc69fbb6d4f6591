"""Stable, process-independent seeds derived from the global seed and a stage name."""

from __future__ import annotations

import hashlib


def stage_seed(seed: int, stage: str, *keys: object) -> int:
    """Return a 32-bit seed for one stage (and wildcard values) of a run.

    Python's ``hash()`` is salted per process, so a SHA-256 of the parts is used instead:
    the same config gives the same seed on every machine and in every job.
    """
    text = ":".join([str(seed), stage, *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
