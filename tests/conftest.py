"""Shared fixtures: validated default settings, helpers to switch realism off and to kill a
training right after its first checkpoint."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fishline.config import validate
from fishline.paint import split_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict[str, Any]:
    """The schema-default config (equal to config/config.yaml)."""
    return validate({}, "config", "defaults")


@pytest.fixture
def paint(config: dict[str, Any]) -> dict[str, Any]:
    """The FISH painter section, sized down for fast tests."""
    section = copy.deepcopy(config["fish"]["paint"])
    section["chunk_size"] = 16
    for split in section["splits"].values():
        split["n"] = 24
    return section


def killed_after_first_checkpoint(
    monkeypatch: pytest.MonkeyPatch, trainer: ModuleType, train: Callable[[], Any]
) -> list[int]:
    """Run ``train`` as a job killed right after its first checkpoint (``trainer``'s
    ``save_checkpoint`` raises KeyboardInterrupt once it has written); the real save is put
    back afterwards. Returns the epochs (or steps) that were saved."""
    original = trainer.save_checkpoint
    saved: list[int] = []

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        original(path, state)
        saved.append(state["epoch"])
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.setattr(trainer, "save_checkpoint", original)
    return saved


def realism_off(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of split settings with every realism knob switched off."""
    out = copy.deepcopy(settings)
    for knob in out["realism"].values():
        knob["enabled"] = False
    return out


@pytest.fixture
def clean_settings(paint: dict[str, Any]) -> dict[str, Any]:
    """Train-split settings with no realism: only nuclei and signals."""
    return realism_off(split_settings(paint, "train"))


# The longest files first: with `pytest -n 2 --dist loadfile` (make test) one worker starts the
# tiny end-to-end run while the other works through the unit tests.
LONGEST_FIRST = [
    "test_workflow.py",
    "test_slurm.py",
    "test_segment.py",
    "test_chromosomes2_workflow.py",
    "test_bbdm.py",
    "test_resume.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order test files longest first (stable within a file)."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
