"""Shared fixtures: validated default settings and helpers to switch realism off."""

from __future__ import annotations

import copy
from pathlib import Path
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
