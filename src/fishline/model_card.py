"""Release a trained Cellpose chromosome model: half-precision weights that carry their own
scores, and a model card beside them (what made the model, where, and how it does on painted
and real metaphases, each score beside the classical baseline)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from fishline import models as model_files
from fishline.instances import pooled_scores
from fishline.io import atomic_outputs
from fishline.logging import get_logger
from fishline.segment import load_cellpose, score_spreads

log = get_logger("model_card")

# The painted check set: spreads the test suite repaints (default painter, this seed) to see
# that shipped weights and painter still give the card's score.
CHECK_SPREADS = 3
CHECK_SEED = 20261202


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def non_defaults(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a nested config whose values differ from the defaults (the card lists
    what made the model without repeating the schema)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            nested = non_defaults(value, default)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


def paint_check_set(folder: Path) -> Path:
    """Paint the check set (``CHECK_SPREADS`` spreads of the default painter, ``CHECK_SEED``)
    into ``folder``; its sheet path."""
    from fishline.config import validate
    from fishline.paint.metaphase import paint_spreads

    paint = validate({}, "config", "defaults")["chromosomes"]["paint"]
    sheet = folder / "check" / "sheet.tsv"
    paint_spreads(
        paint, "check", CHECK_SPREADS, CHECK_SEED, folder / "check", sheet, folder / "check.parquet"
    )
    return sheet


def release_cellpose(
    model_in: str | Path,
    sets: Mapping[str, str | Path],
    segment_settings: Mapping[str, Any],
    provenance: Mapping[str, Any],
    model_out: str | Path,
    card_out: str | Path,
    scores_out: str | Path,
) -> dict[str, Any]:
    """Write ``model_in`` as half-precision weights, score them on every set of ``sets``
    (name -> metaphase sheet with masks) and on the painted check set (default painter), on
    one CPU core, and write the model card (Markdown) and the per-spread scores (TSV).

    The scores travel inside the model file (``metadata['card']``) so a test can check that
    the weights still reproduce them.
    """
    payload = torch.load(model_in, map_location="cpu", weights_only=False)
    half = {
        key: value.half() if value.is_floating_point() else value
        for key, value in payload["state_dict"].items()
    }
    torch.set_num_threads(1)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weights = folder / "half.pt"
        torch.save({**payload, "state_dict": half}, weights)
        model, info = load_cellpose(weights, device)
        trained = info["metadata"]["object_diameter"]
        named = {"painted check": paint_check_set(folder), **sets}
        frames = []
        for name, sheet in named.items():
            frame = score_spreads(model, trained, sheet, segment_settings, name)
            frames.append(frame.assign(set=name))
            log.info(
                "%s: F1@0.5 %.3f over %d spreads", name, pooled_scores(frame)["f1"], len(frame)
            )
    scores = pd.concat(frames, ignore_index=True)
    summary = {
        name: {
            "spreads": len(part),
            **pooled_scores(part),
            "baseline_f1": pooled_scores(part, "baseline_")["f1"],
            "found_per_spread": float(part["found"].mean()),
            "truth_per_spread": float(part["truth"].mean()),
            "seconds_per_spread": float(part["seconds"].mean()),
        }
        for name, part in scores.groupby("set", sort=False)
    }
    card = {
        "summary": summary,
        "check": {
            "spreads": CHECK_SPREADS,
            "seed": CHECK_SEED,
            "f1": summary["painted check"]["f1"],
        },
        "machine": model_files.machine(),
        "provenance": dict(provenance),
    }
    payload["metadata"] = {**payload["metadata"], "card": card}
    with atomic_outputs(model_out, card_out, scores_out) as (model_temp, card_temp, scores_temp):
        torch.save({**payload, "state_dict": half}, model_temp)
        card_temp.write_text(_card_text(payload, card, scores, file_sha256(model_temp), model_out))
        scores.to_csv(scores_temp, sep="\t", index=False, float_format="%.4g")
    return card


def _card_text(
    payload: Mapping[str, Any],
    card: Mapping[str, Any],
    scores: pd.DataFrame,
    sha256: str,
    model_out: str | Path,
) -> str:
    """The model card as Markdown."""
    metadata, provenance, box = payload["metadata"], card["provenance"], card["machine"]
    summary = pd.DataFrame(card["summary"]).T.astype({"spreads": int})
    summary_table = _markdown(
        summary.reset_index(names="set")[
            [
                "set",
                "spreads",
                "f1",
                "precision",
                "recall",
                "baseline_f1",
                "found_per_spread",
                "truth_per_spread",
                "seconds_per_spread",
            ]
        ]
    )
    per_spread = _markdown(
        scores[scores["set"] != "painted check"][
            [
                "set",
                "sample",
                "truth",
                "found",
                "f1",
                "baseline_f1",
                "diameter",
                "truth_diameter",
                "seconds",
            ]
        ]
    )
    settings = yaml.safe_dump(
        dict(provenance["settings"]), sort_keys=False, default_flow_style=None
    ).strip()
    trained_on = metadata.get("machine", box)
    check = card["check"]
    facts = [
        f"File: `{Path(model_out).name}`, SHA-256 `{sha256}`",
        f"Made by: `{provenance['command']}` (config: {provenance['configfiles']}; commit "
        f"{provenance['commit']}); seed {provenance['seed']}, from which the painted spreads' "
        "seeds derive",
        f"Training data: {len(metadata['train_images'])} painted spreads (rule `chrom_paint`, "
        "split `train`, painter settings below); object diameter "
        f"{metadata['object_diameter']:.2f} px",
        f"Training: {metadata['epochs']} epochs, {metadata['seconds'] / 60:.1f} min on "
        f"{metadata.get('device', 'cpu')}, {_describe(trained_on)}",
        f"Scores measured on {_describe(box)}, one CPU thread",
        "Scores: F1 at IoU 0.5, pooled over spreads (TP/FP/FN summed); `baseline_f1` is blur "
        "+ Otsu + connected components on the same spreads; seconds per spread: segmentation "
        "only, model loaded, object size estimated per spread",
        f"Painted check set: {check['spreads']} spreads of the default painter, seed "
        f"{check['seed']} (the test suite repaints them and expects F1 {check['f1']:.3f} within "
        "0.02)",
    ]
    bullets = "\n".join(f"- {fact}" for fact in facts)
    return f"""# Chromosome segmentation model: {Path(model_out).name}

Cellpose 3.1 network (CPnet [2, 32, 64, 128, 256], 3 outputs) trained from scratch on
painted metaphase spreads only; no real image was used for training. Weights in half
precision; every score below is of these half-precision weights, run in float32.

{bullets}

## Settings that differ from the defaults (config/config.yaml at that commit)

```yaml
{settings}
```

## Scores

{summary_table}

## Per spread

{per_spread}
"""


def _describe(box: Mapping[str, Any]) -> str:
    """One line naming a machine and its library versions."""
    return (
        f"{box['cpu']} ({box['cores']} cores, AMX {'yes' if box['amx'] else 'no'}), "
        f"torch {box['torch']}, cellpose {box['cellpose']}, Python {box['python']}"
    )


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table with 3 significant decimals for floats."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
