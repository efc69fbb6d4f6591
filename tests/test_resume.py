"""A workflow killed with SIGKILL in the middle of training resumes to the same result, and
a plain rerun needs no `snakemake --unlock`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
pytestmark = pytest.mark.workflow
TARGET = "results/fish/eval/ce/test.json"


def _command(workdir: Path, configfile: Path, *args: str) -> list[str]:
    return [
        str(BIN / "snakemake"),
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        "--cores", "2",
        *args,
    ]  # fmt: skip


def _run(workdir: Path, configfile: Path, *args: str) -> str:
    result = subprocess.run(
        _command(workdir, configfile, *args), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_sigkill_during_training_then_rerun_gives_the_same_metrics(tmp_path: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["fish"]["models"] = {"ce": {"method": "ce", "augment": "heavy"}}
    config.setdefault("slides", {})["classifier"] = "ce"  # slides call with a trained model
    config["fish"]["train"]["epochs"] = 8
    configfile = tmp_path / "resume.yaml"
    configfile.write_text(yaml.safe_dump(config))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(whole, configfile, TARGET)
    # the painted sets are the whole run's (mtimes kept): only training is killed and resumed
    shutil.copytree(whole / "results/fish/synthetic", killed / "results/fish/synthetic")

    checkpoint = killed / "results/fish/models/checkpoints/ce.ckpt"
    job = subprocess.Popen(
        _command(killed, configfile, TARGET),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches the training job
    )
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert checkpoint.exists(), "training never wrote its first checkpoint"
    assert not (killed / "results/fish/models/ce.pt").exists(), "killed too late: model done"
    assert not (killed / "results/fish/models/ce.history.parquet").exists()

    assert list((killed / ".snakemake/locks").glob("*.lock")), "the kill left no lock"
    rerun = _run(killed, configfile, TARGET)  # no `snakemake --unlock` needed
    assert "removed the lock left" in rerun
    log = (killed / "logs/fish_train/ce.log").read_text()
    assert "resuming from" in log
    assert not (killed / "logs/fish_paint").exists(), "the copied painted sets were repainted"
    attempts = [p.read_text() for p in (killed / "logs/fish_train/attempts").glob("ce.*.log")]
    assert len(attempts) == 2, "the killed attempt's log is kept beside the rerun's"
    assert any("epoch 1" in text and "resuming from" not in text for text in attempts)
    assert not checkpoint.exists(), "the finished run removes its checkpoint"
    assert not list(killed.rglob("*.partial")), "a half-written file survived"
    reference = json.loads((whole / TARGET).read_text())
    resumed = json.loads((killed / TARGET).read_text())
    assert resumed == reference
