"""Release a trained FISH classifier (``make pretrain-fish``): half-precision weights that carry
their own scores, and a model card beside them (what made the model, where, and how certain
and how right it is on every painted test split, the way slide calling uses it)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from fishline import models
from fishline.evaluation import evaluate_predictions
from fishline.logging import get_logger
from fishline.model_card import (
    CHECK_SEED,
    describe_machine,
    half_precision,
    markdown_table,
    write_release,
)
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings
from fishline.slides.cells import CropSettings
from fishline.slides.training_sets import paint_crop_set

log = get_logger("fish.release")

# The painted check set: cells the test suite repaints (cut from fields of the default
# painter, this seed) to see that shipped weights and painter still give the card's score.
CHECK_PATCHES = 150
# Retained fractions (most certain first) the card shows.
CARD_RETAINED = ("100", "90", "75", "50", "30", "20")


def paint_check_patches(folder: Path) -> tuple[Path, Path]:
    """Paint the check set into ``folder``: ``CHECK_PATCHES`` cells cut, as slide calling
    cuts them, from fields of the default field painter (the default test split's painter
    settings, ``CHECK_SEED``), the cells the classifier meets in slide calling. Its stack and
    table paths."""

    paint = FishPaintSettings()
    test = replace(paint.splits["test"], n=CHECK_PATCHES, source="fields")
    paint = replace(paint, splits={**paint.splits, "test": test})
    stack, table = folder / "check.tif", folder / "check.parquet"
    paint_crop_set(paint, FieldSettings(), CropSettings(), "test", CHECK_SEED, stack, table)
    return stack, table


def set_scores(
    predictions: pd.DataFrame, classes: list[str], min_certainty: float
) -> dict[str, Any]:
    """A test split's figures for the card: accuracy, ECE, accuracy at retained fractions,
    and the share of patches at least ``min_certainty`` certain (what slide calling keeps)
    with the accuracy among them."""
    metrics = evaluate_predictions(predictions, classes)
    certain = predictions["certainty"].to_numpy() >= min_certainty
    correct = predictions["correct"].to_numpy()
    return {
        "patches": metrics["n"],
        "accuracy": metrics["accuracy"],
        "ece": metrics["ece"],
        "certain_fraction": float(certain.mean()),
        "certain_accuracy": float(correct[certain].mean()) if certain.any() else float("nan"),
        **{f"retained_{k}": metrics["retention"][k] for k in CARD_RETAINED},
        "confusion": metrics["confusion"],
    }


def release_classifier(
    model_in: str | Path,
    sets: Mapping[str, tuple[str | Path, str | Path]],
    min_certainty: float,
    provenance: Mapping[str, Any],
    model_out: str | Path,
    card_out: str | Path,
    scores_out: str | Path,
    train_source: str = "patches",
) -> dict[str, Any]:
    """Write ``model_in`` as half-precision weights, score them (run in float32, one CPU
    thread) on every set of ``sets`` (name -> painted stack and table) and on the painted
    check set, and write the model card (Markdown) and the per-set scores (TSV).

    The scores travel inside the model file (``metadata['card']``) so a test can check that
    the weights still reproduce them. ``train_source`` is the training split's ``source``
    (patches or fields), for the card.
    """
    from fishline.fish.classifier import predict

    payload = torch.load(model_in, map_location="cpu", weights_only=False)
    half = half_precision(payload)
    classes = payload["class_names"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weights = folder / "half.pt"
        torch.save({**payload, "state_dict": half}, weights)
        loaded = models.load(weights)
        named = {"painted check": paint_check_patches(folder), **sets}
        summary = {}
        for name, (stack, table) in named.items():
            predictions = predict(loaded, stack, table, device="cpu", threads=1)
            summary[name] = set_scores(predictions, classes, min_certainty)
            log.info(
                "%s: accuracy %.3f, %.0f %% of patches certain, %.3f right among them",
                name, summary[name]["accuracy"], 100 * summary[name]["certain_fraction"],
                summary[name]["certain_accuracy"],
            )  # fmt: skip
    card = {
        "summary": summary,
        "check": {
            "patches": CHECK_PATCHES,
            "seed": CHECK_SEED,
            "accuracy": summary["painted check"]["accuracy"],
        },
        "min_certainty": min_certainty,
        "train_source": train_source,
        "machine": models.machine(),
        "provenance": dict(provenance),
    }
    scores = pd.DataFrame(
        [{"set": name, **{k: v for k, v in row.items() if k != "confusion"}}
         for name, row in summary.items()]
    )  # fmt: skip
    write_release(
        payload, half, card,
        lambda sha256: _card_text(payload, card, scores, sha256, model_out),
        scores, (model_out, card_out, scores_out),
    )  # fmt: skip
    return card


def _card_text(
    payload: Mapping[str, Any],
    card: Mapping[str, Any],
    scores: pd.DataFrame,
    sha256: str,
    model_out: str | Path,
) -> str:
    """The model card as Markdown.
    (Over 80 lines: the card's Markdown template written out.)"""
    metadata, provenance = payload["metadata"], card["provenance"]
    classes = payload["class_names"]
    percent = scores.copy()
    for column in percent.columns:
        if column not in ("set", "patches", "ece"):
            percent[column] = percent[column].map(lambda value: f"{100 * value:.1f}")
    summary = markdown_table(
        percent[["set", "patches", "accuracy", "ece", "certain_fraction", "certain_accuracy"]]
    )
    retention = markdown_table(percent[["set", *(f"retained_{k}" for k in CARD_RETAINED)]])
    confusions = "\n\n".join(
        f"{name} (rows: truth, columns: called):\n\n"
        + markdown_table(
            pd.DataFrame(np.array(row["confusion"]), columns=classes).assign(truth=classes)[
                ["truth", *classes]
            ]
        )
        for name, row in card["summary"].items()
    )
    settings = yaml.safe_dump(
        dict(provenance["settings"]), sort_keys=False, default_flow_style=None
    ).strip()
    method = metadata["method"]
    trained_on = metadata.get("machine")
    training = (
        f"{metadata['epochs']} epochs, {metadata['seconds'] / 60:.1f} min on "
        f"{metadata['device']} with {metadata['threads']} threads, {describe_machine(trained_on)}"
        if trained_on
        else f"{metadata['epochs']} epochs"
    )
    check = card["check"]
    facts = [
        f"File: `{Path(model_out).name}`, SHA-256 `{sha256}`",
        f"Made by: `make pretrain-fish` (config: {provenance['configfiles']}; commit "
        f"{provenance['commit']}); seed {provenance['seed']}, from which the painted patches' "
        "and the training's seeds derive",
        f"Training data: {metadata['train_images']} "
        + (
            "cells cut from painted fields as slide calling cuts them"
            if card.get("train_source") == "fields"
            else "painted patches"
        )
        + f" (rule `fish_paint`, split `train`), classes {', '.join(classes)}; painter "
        "settings below",
        f"Network: ResNet-18 FishNet, method `{method['method']}`, input "
        f"{metadata['input_size']} px, batch {method['batch_size']}, learning rate "
        f"{method['lr'][1]:g} -> {method['lr'][0]:g} (cosine), augmentation "
        f"`{method['augment']}`, label smoothing {method['smoothing']:g}",
        f"Training: {training}",
        f"Scores measured on {describe_machine(card['machine'])}, one CPU thread, of these "
        "half-precision weights run in float32",
        f"Certain: certainty (1 - normalised entropy of the class probabilities) at least "
        f"{card['min_certainty']:g}, the `slides.calls.min_certainty` slide calling used when "
        "this card was written; cells below it are set aside as uncertain",
        f"Painted check set: {check['patches']} cells cut from fields of the default painter, "
        f"seed {check['seed']} (the test suite repaints them and expects accuracy "
        f"{check['accuracy']:.3f} within 0.02)",
        "Every set is painted: no real cell was used for training or scoring",
    ]
    bullets = "\n".join(f"- {fact}" for fact in facts)
    return f"""# FISH classifier: {Path(model_out).name}

Calls a nucleus crop normal, gain or amplification with a certainty; slide calling uses it
by default (`slides.classifier`). Weights in half precision.

{bullets}

## Settings that differ from the defaults (config/config.yaml at that commit)

```yaml
{settings}
```

## Scores (%, except ECE)

{summary}

## Accuracy among the most certain patches (% of each set retained)

{retention}

## Confusion

{confusions}
"""
