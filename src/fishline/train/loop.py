"""What every training loop shares: device and threads, precision, schedule, and TrainingRun
(resume, checkpoints, history, one log line per epoch or checkpoint with the time left)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fishline import models
from fishline.errors import InputError
from fishline.io import atomic_outputs
from fishline.logging import get_logger, progress_bar, rounded

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
    if "parts" not in state or "done" not in state:
        log.warning("not resuming %s: an older fishline wrote it; training starts fresh", path)
        return None
    return state


GLOBAL_RNG = "torch global random state"
"""Put this in :class:`TrainingRun`'s parts where a loop draws from torch's global generator
(dropout), so that a resumed run draws what an uninterrupted one would."""


def _state_of(part: Any) -> Any:
    if part is GLOBAL_RNG:
        return torch.get_rng_state()
    if isinstance(part, torch.Generator):
        return part.get_state()
    return part.state_dict()


def _restore(part: Any, state: Any) -> None:
    if part is GLOBAL_RNG:
        torch.set_rng_state(state)
    elif isinstance(part, torch.Generator):
        part.set_state(state)
    else:
        part.load_state_dict(state)


def duration(seconds: float) -> str:
    """``75.3`` -> ``1 min 15 s``, ``8.25`` -> ``8.2 s``: elapsed and remaining times in logs."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class TrainingRun:
    """The one training loop of fishline: resume, steps, checkpoints, history, log lines.

    A model supplies the objects whose state must survive a kill (modules, optimizers, LR
    schedulers, ``torch.Generator``s, :data:`GLOBAL_RNG`, or anything with ``state_dict`` /
    ``load_state_dict``) and a step function; :meth:`fit` calls the step from :attr:`done`
    to ``total`` and, after every ``every`` steps (an epoch, or a checkpoint interval) and
    after the last, records the mean of what the steps returned: the row joins the history,
    the log gets one line with the figures rounded, the time taken and the time left, and
    the checkpoint is written. A checkpoint is resumed only when it was made with the same
    settings and on the same training data. :meth:`finish` writes the history and the model
    and drops the checkpoint.

    Parameters
    ----------
    checkpoint : str or pathlib.Path or None
        The checkpoint file; resumed when it exists and belongs to this run. None for a
        training too short to be worth resuming: history and log lines only.
    settings : dict of str to Any
        Everything that defines the run (settings, seed, data sizes); hashed into the
        checkpoint's fingerprint.
    data : sequence of numpy.ndarray or torch.Tensor
        The training data, hashed by content.
    parts : dict of str to Any
        The stateful objects, by the name their state has in the checkpoint.
    total : int
        Steps in the whole run.
    every : int
        Steps per history row and checkpoint.
    unit : str, optional
        How the log lines count: ``"epoch"`` (``every`` steps each) or ``"step"``; default
        ``"epoch"``.
    label : str, optional
        What the log lines start with when one job trains several models (``"seed 3"``).

    Examples
    --------
    >>> run = TrainingRun(path, {"lr": lr, "seed": 0}, [x, y], {"model": net, "opt": opt}, 50, 5)
    >>> run.fit(lambda i: {"loss": one_step(i)}, row=lambda done: {"epoch": done // 5})
    >>> run.finish(history_path, model_path, net, "fishnet", spec, names, metadata)
    """

    def __init__(
        self,
        checkpoint: str | Path | None,
        settings: dict[str, Any],
        data: Sequence[Any],
        parts: dict[str, Any],
        total: int,
        every: int,
        unit: str = "epoch",
        label: str = "",
    ) -> None:
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.fingerprint = spec_hash(settings) if self.checkpoint else ""
        self.data = data_hash(*data) if self.checkpoint else ""
        self.parts = parts
        self.total = total
        self.every = max(1, every)
        self.unit = unit
        self.label = f"{label} " if label else ""
        self.history: list[dict[str, Any]] = []
        self.done = 0
        state = None
        if self.checkpoint is not None:
            state = load_checkpoint(self.checkpoint, self.fingerprint, self.data)
        if state is not None:
            for name, part in parts.items():
                _restore(part, state["parts"][name])
            self.history, self.done = state["history"], state["done"]
            log.info("resuming from %s (%s done)", self.checkpoint, self._count(self.done))

    @property
    def seconds(self) -> float:
        """Wall time of every recorded interval (a resumed run's included)."""
        return sum(row.get("seconds", 0.0) for row in self.history)

    def _count(self, done: int) -> str:
        if self.unit == "epoch":
            return f"epoch {done // self.every}/{-(-self.total // self.every)}"
        return f"step {done}/{self.total}"

    def fit(
        self,
        step: Callable[[int], dict[str, float]],
        row: Callable[[int], dict[str, Any]] | None = None,
        desc: str = "train",
    ) -> list[dict[str, Any]]:
        """Call ``step(i)`` for each step ``i`` left; return the history.

        ``step`` does one optimiser step and returns its figures (``{"loss": ...}``);
        ``row(done)`` gives the columns a history row starts with (the epoch, its
        objective, the learning rate), before the figures' means and the interval's
        ``seconds``.
        """
        started = time.perf_counter()
        resumed_at = self.done
        sums: dict[str, float] = {}
        count, interval = 0, time.perf_counter()
        progress = progress_bar(range(self.done, self.total), desc=desc, unit="step")
        for i in progress:
            figures = step(i)
            for key, value in figures.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            if figures:
                progress.set_postfix({key: f"{value:.4g}" for key, value in figures.items()})
            done = i + 1
            if done % self.every and done != self.total:
                continue
            means = {key: value / count for key, value in sums.items()}
            now = time.perf_counter()
            head = row(done) if row is not None else {}
            rate = (now - started) / (done - resumed_at)
            log.info(
                "%s%s: %s | %s elapsed, %s left",
                self.label,
                self._count(done),
                rounded({k: v for k, v in {**head, **means}.items() if k != self.unit}),
                duration(now - started),
                duration(rate * (self.total - done)),
            )
            self._record(done, {**head, **means, "seconds": now - interval})
            sums, count, interval = {}, 0, time.perf_counter()
        return self.history

    def _record(self, done: int, row: dict[str, Any]) -> None:
        """Add ``row`` to the history after ``done`` steps and write the checkpoint."""
        self.history.append(row)
        self.done = done
        if self.checkpoint is None:
            return
        save_checkpoint(
            self.checkpoint,
            {
                "fingerprint": self.fingerprint,
                "data": self.data,
                "done": done,
                "parts": {name: _state_of(part) for name, part in self.parts.items()},
                "history": self.history,
            },
        )

    def finish(
        self,
        history_path: str | Path,
        model_path: str | Path,
        model: nn.Module,
        kind: str,
        spec: dict[str, Any],
        names: list[str],
        metadata: dict[str, Any],
        columns: list[str] | None = None,
    ) -> None:
        """Write the history (``columns`` fixes them even for an empty history) and the
        model atomically, then drop the now useless checkpoint."""
        with atomic_outputs(history_path) as (temp,):
            pd.DataFrame(self.history, columns=columns).to_parquet(temp, index=False)
        models.save(model_path, model, kind, spec, names, metadata)
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)
