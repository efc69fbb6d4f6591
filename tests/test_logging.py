"""Job logs: progress bars as lines, rounded figures, earlier attempts kept."""

from __future__ import annotations

from pathlib import Path

from fishline.logging import get_logger, log_to, progress_bar, rounded


def test_job_log_reads_as_lines_and_keeps_each_attempt(tmp_path: Path) -> None:
    log = tmp_path / "logs/rule/job.log"
    for attempt in range(2):
        with log_to(log):
            for _ in progress_bar(range(3), desc=f"attempt {attempt}", mininterval=0):
                pass
            get_logger("test").info("epoch 1: %s", rounded({"loss": 5.141215430365669, "n": 3}))
    text = log.read_text()
    assert "\r" not in text and "attempt 0" not in text
    bars = [line for line in text.splitlines() if line.startswith("attempt 1")]
    assert len(bars) >= 2 and bars[-1].startswith("attempt 1: 100%")
    assert "epoch 1: loss 5.141, n 3" in text
    kept = sorted((log.parent / "attempts").glob("job.*.log"))
    assert len(kept) == 2
    assert "attempt 0: 100%" in kept[0].read_text() and kept[1].read_text() == text


def test_a_loss_shown_every_step_adds_no_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with log_to(log):
        progress = progress_bar(range(500), desc="train")
        for step in progress:
            progress.set_postfix(loss=f"{1 / (step + 1):.4f}")
    bars = [line for line in log.read_text().splitlines() if line.startswith("train")]
    assert len(bars) <= 3 and bars[-1].startswith("train: 100%")  # first, maybe one, final
