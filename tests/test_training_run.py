"""The shared trainer: steps, resume, checkpoint contents, history, log lines, finishing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from fishline import models
from fishline.logging import log_to
from fishline.nets.fish import FishNet
from fishline.train.loop import GLOBAL_RNG, TrainingRun, duration, save_checkpoint

STEPS, EVERY = 8, 2  # four epochs of two steps


class KilledError(Exception):
    """Stands for the job being killed."""


def _run(tmp_path: Path, lr: float = 0.1, data: torch.Tensor | None = None) -> TrainingRun:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    order = torch.Generator().manual_seed(5)
    data = torch.arange(6.0) if data is None else data
    parts = {"net": net, "optimizer": optimizer, "order": order, "torch_rng": GLOBAL_RNG}
    return TrainingRun(tmp_path / "run.ckpt", {"lr": lr}, [data], parts, STEPS, EVERY)


def _fit(run: TrainingRun, stop_after: int | None = None) -> None:
    """Train; with ``stop_after``, die when that step begins (as a killed job would)."""

    def step(i: int) -> dict[str, float]:
        if i == stop_after:
            raise KilledError
        net, optimizer = run.parts["net"], run.parts["optimizer"]
        x = torch.randn(4, 3, generator=run.parts["order"])
        noise = 1 + torch.rand(4, 2)  # drawn from the global generator, as dropout is
        loss = (net(x) * noise).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach()), "steps": 1.0}

    run.fit(step, lambda done: {"epoch": done // EVERY})


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def test_rows_hold_the_mean_of_their_steps_and_the_row_columns(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _fit(run)
    assert [row["epoch"] for row in run.history] == [1, 2, 3, 4]
    assert all(row["steps"] == 1.0 and row["seconds"] > 0 for row in run.history)
    assert list(run.history[0]) == ["epoch", "loss", "steps", "seconds"]
    assert run.done == STEPS
    assert run.seconds == pytest.approx(sum(row["seconds"] for row in run.history))


def test_resumed_run_continues_where_the_killed_one_stopped(tmp_path: Path) -> None:
    whole = _run(tmp_path / "whole")
    _fit(whole)
    killed = _run(tmp_path / "killed")
    with pytest.raises(KilledError):
        _fit(killed, stop_after=5)  # mid-epoch: the checkpoint holds 4 steps
    torch.manual_seed(123)  # a new process: another global random state
    resumed = _run(tmp_path / "killed")
    assert resumed.done == 4 and [row["epoch"] for row in resumed.history] == [1, 2]
    _fit(resumed)
    assert torch.equal(resumed.parts["net"].weight, whole.parts["net"].weight)
    assert _without_seconds(resumed.history) == _without_seconds(whole.history)


@pytest.mark.parametrize("change", ["settings", "data"])
def test_checkpoint_of_other_settings_or_data_starts_fresh(tmp_path: Path, change: str) -> None:
    with pytest.raises(KilledError):
        _fit(_run(tmp_path), stop_after=3)
    assert _run(tmp_path).done == 2
    if change == "settings":
        again = _run(tmp_path, lr=0.2)
    else:
        again = _run(tmp_path, data=torch.arange(6.0) + 1)
    assert again.done == 0 and again.history == []


def test_checkpoint_of_an_older_layout_starts_fresh(tmp_path: Path) -> None:
    first = _run(tmp_path)
    state = {"fingerprint": first.fingerprint, "data": first.data, "epoch": 3, "model": {}}
    save_checkpoint(tmp_path / "run.ckpt", state)
    assert _run(tmp_path).done == 0


def test_one_log_line_per_epoch_with_rounded_figures_and_time_left(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with log_to(log):
        _fit(_run(tmp_path))
    lines = [line for line in log.read_text().splitlines() if " epoch " in line]
    assert len(lines) == STEPS // EVERY
    assert "epoch 1/4: loss " in lines[0] and "elapsed" in lines[0] and "left" in lines[0]
    assert lines[-1].endswith("0.0 s left")
    loss = lines[0].split("loss ")[1].split(",")[0]
    assert len(loss.replace(".", "").lstrip("0")) <= 4  # four significant digits at most


def test_without_checkpoint_nothing_is_written(tmp_path: Path) -> None:
    net = torch.nn.Linear(1, 1)
    run = TrainingRun(None, {}, [], {"net": net}, total=3, every=1, unit="step")
    history = run.fit(lambda i: {"loss": float(i)})
    assert [row["loss"] for row in history] == [0.0, 1.0, 2.0]
    assert list(tmp_path.iterdir()) == []


def test_finish_writes_history_and_model_and_drops_the_checkpoint(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(KilledError):
        _fit(run, stop_after=3)
    assert run.checkpoint is not None and run.checkpoint.exists()
    spec = {"classes": 3, "in_channels": 3}
    net = FishNet(3)
    run.finish(tmp_path / "h.parquet", tmp_path / "m.pt", net, "fishnet", spec, list("abc"), {})
    assert not run.checkpoint.exists()
    history = pd.read_parquet(tmp_path / "h.parquet")
    assert list(history.columns) == ["epoch", "loss", "steps", "seconds"] and len(history) == 1
    assert models.load(tmp_path / "m.pt")[1]["kind"] == "fishnet"


def test_durations_read_as_people_write_them() -> None:
    assert duration(8.25) == "8.2 s"
    assert duration(75.3) == "1 min 15 s"
    assert duration(3 * 3600 + 120) == "3 h 02 min"
