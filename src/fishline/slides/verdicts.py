"""A sample's verdict from its certain cells, the rule that gives it in words, and the
per-sample summary table: pure functions shared by the slide calls
(:mod:`fishline.slides.stages`), the set summary (:mod:`fishline.slides.summary`) and their
figures and tables (:mod:`fishline.slides.figures`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fishline.schema import default, setting_default, typed_settings
from fishline.slides.cells import UNKNOWN


@dataclass(frozen=True)
class CallRule:
    """One verdict rule: ``verdict`` when the certain cells' ``class_`` fraction (config key
    ``class``) reaches ``min_fraction``."""

    class_: str
    min_fraction: float
    verdict: str


def _default_rules() -> tuple[CallRule, ...]:
    """The schema's verdict rules."""
    return tuple(
        typed_settings(CallRule, rule, "slides.calls.rules")
        for rule in default("slides.calls.rules")
    )


@dataclass(frozen=True)
class CallSettings:
    """How a sample's verdict is called from its cells (config block ``slides.calls``; each
    default is the schema's, its meaning in config/README.md).

    Parameters
    ----------
    min_certainty : float
        Cells at least this certain (0-1) count; the others are set aside as uncertain.
    min_cells : int
        Fewer certain cells than this give ``too_few``.
    too_few : str
        The verdict of a sample with too few certain cells.
    rules : tuple of CallRule
        Tried in order; the first whose class fraction reaches its ``min_fraction`` gives the
        verdict.
    otherwise : str
        The verdict when no rule matches.

    Examples
    --------
    >>> from dataclasses import replace
    >>> strict = replace(CallSettings(), min_certainty=0.8)
    >>> verdict({"amplification": 0.3}, 12, strict)
    'MYCN amplified'
    """

    min_certainty: float = setting_default("slides.calls.min_certainty")
    min_cells: int = setting_default("slides.calls.min_cells")
    too_few: str = setting_default("slides.calls.too_few")
    rules: tuple[CallRule, ...] = field(default_factory=_default_rules)
    otherwise: str = setting_default("slides.calls.otherwise")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CallSettings:
        """The settings of a ``slides.calls`` block (every key given)."""
        return typed_settings(cls, block, "slides.calls")


def rule_text(calls: CallSettings) -> str:
    """The configured verdict rule in words (stated in the report and the summary).

    Parameters
    ----------
    calls : CallSettings
        The verdict settings.

    Returns
    -------
    str
        One paragraph stating the certainty cut-off, the minimum cell count and the rules in
        order.
    """
    parts = [
        f"'{rule.verdict}' if the {rule.class_} fraction >= {rule.min_fraction:g}"
        for rule in calls.rules
    ]
    return (
        f"Cells with certainty >= {calls.min_certainty:g} count; the others are set aside "
        f"as uncertain. Fractions are over the certain cells. Fewer than {calls.min_cells} "
        f"certain cells: '{calls.too_few}'. Otherwise, first match of: "
        + "; ".join(parts)
        + f"; else '{calls.otherwise}'."
    )


def verdict(fractions: Mapping[str, float], certain: int, calls: CallSettings) -> str:
    """A sample's verdict from its certain-cell class fractions (rules in order).

    Parameters
    ----------
    fractions : mapping of str to float
        Each class's fraction (0-1) of the sample's certain cells; missing classes count 0.
    certain : int
        Number of certain cells in the sample.
    calls : CallSettings
        The verdict settings.

    Returns
    -------
    str
        ``too_few`` with fewer than ``min_cells`` certain cells, else the verdict of the
        first rule whose class fraction reaches its ``min_fraction``, else ``otherwise``.
    """
    if certain < calls.min_cells:
        return calls.too_few
    for rule in calls.rules:
        if fractions.get(rule.class_, 0.0) >= rule.min_fraction:
            return rule.verdict
    return calls.otherwise


def summarise(cells: pd.DataFrame, classes: Sequence[str], calls: CallSettings) -> pd.DataFrame:
    """Per sample: cells called, certain and uncertain counts, class counts and fractions
    among certain cells, verdict (and, where truth exists, accuracy over matched cells).

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per called cell with ``sample``, ``field``, ``certainty`` (0-1),
        ``predicted_class`` and ``truth_class`` (``UNKNOWN`` where no truth matched).
    classes : sequence of str
        The class names, in column order.
    calls : CallSettings
        The verdict settings.

    Returns
    -------
    pandas.DataFrame
        One row per sample, in order of first appearance: sample, fields, cells, certain,
        uncertain, ``n_<class>``, ``fraction_<class>`` (0-1 of the certain cells), verdict
        and accuracy_matched (0-1; NaN without matched truth).
    """
    rows = []
    samples = list(dict.fromkeys(cells["sample"]))
    for sample in samples:
        part = cells[cells["sample"] == sample]
        sure = part[part["certainty"] >= calls.min_certainty]
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


def empty_summary(
    sample: str, fields: int, classes: Sequence[str], calls: CallSettings
) -> pd.DataFrame:
    """The summary row (as :func:`summarise` gives it) of a sample in which no cell was
    found: zero counts and fractions, the verdict for no certain cell."""
    row: dict[str, Any] = {
        "sample": sample,
        "fields": fields,
        "cells": 0,
        "certain": 0,
        "uncertain": 0,
    }
    row.update({f"n_{c}": 0 for c in classes})
    row.update({f"fraction_{c}": 0.0 for c in classes})
    row["verdict"] = verdict({}, 0, calls)
    row["accuracy_matched"] = np.nan
    return pd.DataFrame([row])
