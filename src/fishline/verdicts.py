"""A sample's verdict from its certain cells, and the rule that gives it in words: pure
functions shared by the slide calls (fishline.slides) and their figures and tables
(fishline.slide_figures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rule_text(calls: Mapping[str, Any]) -> str:
    """The configured verdict rule in words (stated in the report and the summary)."""
    parts = [
        f"'{rule['verdict']}' if the {rule['class']} fraction >= {rule['min_fraction']:g}"
        for rule in calls["rules"]
    ]
    return (
        f"Cells with certainty >= {calls['min_certainty']:g} count; the others are set aside "
        f"as uncertain. Fractions are over the certain cells. Fewer than {calls['min_cells']} "
        f"certain cells: '{calls['too_few']}'. Otherwise, first match of: "
        + "; ".join(parts)
        + f"; else '{calls['otherwise']}'."
    )


def verdict(fractions: Mapping[str, float], certain: int, calls: Mapping[str, Any]) -> str:
    """A sample's verdict from its certain-cell class fractions (rules in order)."""
    if certain < calls["min_cells"]:
        return str(calls["too_few"])
    for rule in calls["rules"]:
        if fractions.get(rule["class"], 0.0) >= rule["min_fraction"]:
            return str(rule["verdict"])
    return str(calls["otherwise"])
