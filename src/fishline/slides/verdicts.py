"""A sample's verdict from its certain cells, the rule that gives it in words, and the
per-sample summary table: pure functions shared by the slide calls
(:mod:`fishline.slides.stages`) and their figures and tables (:mod:`fishline.slides.figures`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fishline.slides.cells import UNKNOWN


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


def summarise(
    cells: pd.DataFrame, classes: Sequence[str], calls: Mapping[str, Any]
) -> pd.DataFrame:
    """Per sample: cells called, certain and uncertain counts, class counts and fractions
    among certain cells, verdict (and, where truth exists, accuracy over matched cells)."""
    rows = []
    samples = list(dict.fromkeys(cells["sample"]))
    for sample in samples:
        part = cells[cells["sample"] == sample]
        sure = part[part["certainty"] >= calls["min_certainty"]]
        counts = sure["predicted_class"].value_counts()
        fractions = {
            name: (float(counts.get(name, 0)) / len(sure) if len(sure) else 0.0) for name in classes
        }
        row: dict[str, Any] = {
            "sample": sample,
            "fields": int(part["field"].nunique()),
            "cells": len(part),
            "certain": len(sure),
            "uncertain": len(part) - len(sure),
        }
        for name in classes:
            row[f"n_{name}"] = int(counts.get(name, 0))
        for name in classes:
            row[f"fraction_{name}"] = fractions[name]
        row["verdict"] = verdict(fractions, len(sure), calls)
        known = part[part["truth_class"] != UNKNOWN]
        row["accuracy_matched"] = (
            float((known["truth_class"] == known["predicted_class"]).mean())
            if len(known)
            else np.nan
        )
        rows.append(row)
    columns = [
        "sample", "fields", "cells", "certain", "uncertain",
        *[f"n_{c}" for c in classes], *[f"fraction_{c}" for c in classes],
        "verdict", "accuracy_matched",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
