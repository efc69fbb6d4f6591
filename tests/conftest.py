"""Shared fixtures: validated default settings, helpers to switch realism off and to kill a
training right after its first checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fishline.paint import FishPaintSettings
from fishline.schema import validate
from fishline.train import loop as trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict[str, Any]:
    """The schema-default config (config/config.yaml departs from it only where the demo
    paints harder SimSearch cells)."""
    return validate({}, "config", "defaults")


@pytest.fixture
def paint(config: dict[str, Any]) -> FishPaintSettings:
    """The FISH painter of the config, sized down for fast tests."""
    painter = FishPaintSettings.from_config(config["fish"]["paint"])
    splits = {name: replace(split, n=24) for name, split in painter.splits.items()}
    return replace(painter, chunk_size=16, splits=splits)


def killed_after_first_checkpoint(
    monkeypatch: pytest.MonkeyPatch, train: Callable[[], Any]
) -> list[int]:
    """Run ``train`` as a job killed right after its first checkpoint (the shared trainer's
    ``save_checkpoint`` raises KeyboardInterrupt once it has written); the real save is put
    back afterwards. Returns how many history rows (epochs, or checkpoint intervals) each
    saved checkpoint held."""
    original = trainer.save_checkpoint
    saved: list[int] = []

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        original(path, state)
        saved.append(len(state["history"]))
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.setattr(trainer, "save_checkpoint", original)
    return saved


def realism_off(settings: FishPaintSettings) -> FishPaintSettings:
    """The painter with every realism knob switched off."""
    realism = {knob: {**value, "enabled": False} for knob, value in settings.realism.items()}
    return replace(settings, realism=realism)


@pytest.fixture
def clean_settings(paint: FishPaintSettings) -> FishPaintSettings:
    """The train split's painter with no realism: only nuclei and signals."""
    return realism_off(paint.for_split("train"))


# The longest files first (wall time of each file in a full `make test` on 2 cores, 2-core
# EPYC without AMX, 2026-12-06), so that the two workers of `pytest -n 2 --dist loadfile
# --no-loadscope-reorder` (make test) end together: one runs the tiny end-to-end workflow
# while the other works through the rest. (xdist's default order, most tests first, left one
# worker idle for three minutes.)
LONGEST_FIRST = [
    "test_workflow.py",  # 280 s: the tiny end-to-end run
    "test_workflow_plans.py",  # 120 s
    "test_slurm.py",  # 93 s, half of it waiting on SLURM's status polls
    "test_chromosomes2_workflow.py",  # 76 s
    "test_resume.py",  # 58 s
    "test_segment.py",  # 52 s
    "test_shipped_models.py",  # 47 s
    "test_classifier.py",  # 36 s
    "test_simsearch_core.py",  # 33 s
    "test_model_card.py",  # 23 s
    "test_annotate_ui.py",  # 18 s
    "test_simsearch_train.py",  # 18 s
    "test_chromclass.py",  # 11 s
    "test_bbdm.py",  # 9 s
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order test files longest first (stable within a file)."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
