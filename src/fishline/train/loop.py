"""Pieces every training loop shares: device and threads, schedule, checkpoints, history."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fishline import models
from fishline.errors import InputError
from fishline.io import atomic_outputs
from fishline.logging import get_logger

log = get_logger("train")
# Set to 0 to train in fp32 under precision `auto` even on a CPU with bf16 units.
CPU_BF16_VARIABLE = "FISHLINE_CPU_BF16"


def setup_device(device: str, threads: int, seed: int) -> torch.device:
    """Pick the device (``auto`` = CUDA when present), seed torch, bound CPU threads.

    ``cuda`` without a usable GPU is an error rather than a silent fall-back to the CPU: on a
    cluster it means the job was not given the GPU it asked for.
    """
    if device == "cuda" and not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise InputError(
            "config",
            f"torch sees no CUDA device (CUDA_VISIBLE_DEVICES={visible})",
            item="device: cuda",
        )
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    chosen = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    if chosen.type == "cpu":
        torch.use_deterministic_algorithms(True)
    log.info("device %s, %d CPU threads", chosen, torch.get_num_threads())
    return chosen


@contextlib.contextmanager
def torch_settings(device: str, threads: int, seed: int) -> Iterator[torch.device]:
    """``setup_device`` for a library call made from a notebook or another program: torch's
    thread count, deterministic-algorithms mode and global random state are put back as
    they were when the block ends, whatever happens inside."""
    threads_before = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=gpus):
        try:
            yield setup_device(device, threads, seed)
        finally:
            torch.set_num_threads(threads_before)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AMX tiles, e.g. Sapphire Rapids).

    Only there is bf16 autocast worth it on a CPU (ResNet-18 training at 64 px: 1.6-1.9x
    faster than fp32, docs/fish.md); elsewhere bf16 is emulated and slower than fp32.
    ``FISHLINE_CPU_BF16=0`` in the environment makes a CPU with them count as one without,
    so that ``auto`` trains in fp32 as on the machines that lack them (the test suite run
    as such a machine runs it).
    """
    if os.environ.get(CPU_BF16_VARIABLE) == "0":
        return False
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def bf16_autocast(device: torch.device, precision: str) -> bool:
    """Whether to run under bf16 autocast: ``bf16`` always, ``fp32`` never, ``auto`` on CUDA
    and on CPUs with native bf16 units."""
    if precision == "auto":
        return device.type == "cuda" or cpu_has_bf16_units()
    return precision == "bf16"


def cosine_lr(step: int, warmup: int, cycle: int, low: float, high: float) -> float:
    """Linear warm-up from ``low`` to ``high`` over ``warmup`` steps, then cosine annealing
    back to ``low`` over ``cycle`` steps, restarting every cycle."""
    if step < warmup:
        return low + (high - low) * (step + 1) / warmup
    position = ((step - warmup) % max(cycle, 1)) / max(cycle, 1)
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * position))


def spec_hash(spec: dict[str, Any]) -> str:
    """Fingerprint of everything that defines a training run (checkpoints must match it)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_hash(*arrays: Any) -> str:
    """Fingerprint of the training data's content (shape, dtype and bytes of each array), so
    a checkpoint made on other data is never resumed after the inputs were repainted."""
    digest = hashlib.sha256()
    for array in arrays:
        array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()[:16]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a resumable checkpoint atomically (a kill never leaves a torn file)."""
    with atomic_outputs(path) as (temp,):
        torch.save(state, temp)


def load_checkpoint(path: Path, fingerprint: str, data: str) -> dict[str, Any] | None:
    """Return the checkpoint at ``path`` if it belongs to the same run (settings
    ``fingerprint`` and training ``data`` hash, both stored in it), else None; the log
    says why a checkpoint was not resumed."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("data") != data:
        log.warning(
            "not resuming %s: it was made on other training data (data hash %s, now %s); "
            "training starts fresh",
            path,
            state.get("data", "not recorded"),
            data,
        )
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("not resuming %s: it was made with other settings; training starts fresh", path)
        return None
    log.info("resuming from %s (epoch %d done)", path, state["epoch"])
    return state


def finish_training(
    history: pd.DataFrame,
    history_path: str | Path,
    model_path: str | Path,
    model: nn.Module,
    kind: str,
    spec: dict[str, Any],
    names: list[str],
    metadata: dict[str, Any],
    checkpoint_path: Path,
) -> None:
    """Write the history and the model atomically, then drop the now useless checkpoint."""
    with atomic_outputs(history_path) as (temp,):
        history.to_parquet(temp, index=False)
    models.save(model_path, model, kind, spec, names, metadata)
    checkpoint_path.unlink(missing_ok=True)
