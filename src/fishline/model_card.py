"""Release a trained Cellpose model (chromosomes or nuclei): half-precision weights that carry
their own scores, and a model card beside them (what made the model, where, and how it does on
painted and real images, each score beside the classical baseline)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from fishline import models as model_files
from fishline.instances import (
    estimate_nucleus_diameter,
    pooled_scores,
    threshold_components,
    watershed_nuclei,
)
from fishline.io import atomic_outputs, write_image
from fishline.logging import get_logger
from fishline.nets.cellpose_ensemble import DEFAULT_WIDTH
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings
from fishline.segment import SegmentSettings, estimate_diameter, load_cellpose, score_spreads
from fishline.slides.training_sets import paint_training_fields

log = get_logger("model_card")

# The painted check set: images the test suite repaints (default painter, this seed) to see
# that shipped weights and painter still give the card's score.
CHECK_IMAGES = 3
CHECK_SEED = 20261202


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(
    configfiles: list[str],
    seed: int,
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any],
    folder: str | Path,
) -> dict[str, Any]:
    """What a model card says made the model: the config files (relative to the repository
    of ``folder``), the commit checked out there, the seed and the settings that differ from
    the defaults."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], capture_output=True, text=True, cwd=folder)
        return result.stdout.strip()

    root = git("rev-parse", "--show-toplevel") or "."
    return {
        "configfiles": ", ".join(os.path.relpath(Path(p).resolve(), root) for p in configfiles),
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "seed": seed,
        "settings": non_defaults(settings, defaults),
    }


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


def paint_check_spreads(folder: Path) -> Path:
    """Paint the chromosome check set (``CHECK_IMAGES`` spreads of the default painter,
    ``CHECK_SEED``) into ``folder``; its sheet path."""

    sheet, table = folder / "check" / "sheet.tsv", folder / "check.parquet"
    paint_spreads(SpreadSettings(), "check", CHECK_IMAGES, CHECK_SEED, sheet.parent, sheet, table)
    return sheet


def paint_check_fields(folder: Path) -> Path:
    """Paint the nucleus check set (``CHECK_IMAGES`` whole fields of the default field
    painter, ``CHECK_SEED``) into ``folder``; its image sheet (sample, image, dapi, mask)."""

    return paint_training_fields(
        FishPaintSettings(), FieldSettings(), CHECK_IMAGES, CHECK_SEED, folder / "check"
    )


def stardist_sheet(folder: Path) -> Path:
    """stardist 0.9.2's real nuclei test image and its 125 truth masks (in the wheel, nothing
    downloaded) written as an image sheet in ``folder``; its path."""
    from stardist.data import test_image_nuclei_2d

    image, truth = test_image_nuclei_2d(return_mask=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "stardist.tif", image.astype(np.uint16))
    write_image(folder / "stardist.mask.tif", truth.astype(np.uint16))
    sheet = folder / "stardist.tsv"
    pd.DataFrame(
        [{"sample": "stardist_test_image_nuclei_2d", "image": "stardist.tif", "dapi": 0,
          "mask": "stardist.mask.tif"}]
    ).to_csv(sheet, sep="\t", index=False)  # fmt: skip
    return sheet


def half_precision(payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of a model file with its floating-point tensors in half precision."""
    return {
        key: value.half() if value.is_floating_point() else value
        for key, value in payload["state_dict"].items()
    }


def write_release(
    payload: Mapping[str, Any],
    half: Mapping[str, torch.Tensor],
    card: Mapping[str, Any],
    card_text: Callable[[str], str],
    scores: pd.DataFrame,
    outputs: tuple[str | Path, str | Path, str | Path],
) -> None:
    """Write a release atomically: the half-precision weights carrying ``card`` in their
    metadata, the model card (``card_text`` of the weights file's SHA-256) and the scores."""
    released = {**payload, "metadata": {**payload["metadata"], "card": card}, "state_dict": half}
    with atomic_outputs(*outputs) as (model_temp, card_temp, scores_temp):
        torch.save(released, model_temp)
        card_temp.write_text(card_text(file_sha256(model_temp)))
        scores.to_csv(scores_temp, sep="\t", index=False, float_format="%.4g")


@dataclass(frozen=True)
class Track:
    """What differs between releasing a chromosome and a nucleus model."""

    title: str
    images: str  # what one scored image is called in the card
    training: str  # where the training images came from
    command: str  # what remakes the release
    paint_check: Callable[[Path], Path]
    estimate: Callable[[np.ndarray], float]
    baseline: Callable[[np.ndarray], np.ndarray]
    baseline_text: str


CHROMOSOMES = Track(
    title="Chromosome segmentation model",
    images="spreads",
    training="painted spreads (rule `chrom_paint`, split `train`)",
    command="make pretrain",
    paint_check=paint_check_spreads,
    estimate=estimate_diameter,
    baseline=threshold_components,
    baseline_text="blur + Otsu + connected components",
)
NUCLEI = Track(
    title="Nucleus segmentation model",
    images="fields",
    training="painted whole fields (rule `slides_train_fields`)",
    command="make pretrain-nuclei",
    paint_check=paint_check_fields,
    estimate=estimate_nucleus_diameter,
    baseline=watershed_nuclei,
    baseline_text="blur + Li threshold + distance-transform watershed",
)


def release_cellpose(
    model_in: str | Path,
    sets: Mapping[str, str | Path],
    segment_settings: SegmentSettings,
    provenance: Mapping[str, Any],
    model_out: str | Path,
    card_out: str | Path,
    scores_out: str | Path,
    track: Track = CHROMOSOMES,
) -> dict[str, Any]:
    """Write ``model_in`` as half-precision weights, score them on every set of ``sets``
    (name -> image sheet with masks) and on the track's painted check set (default painter),
    on one CPU core, object size estimated per image, and write the model card (Markdown)
    and the per-image scores (TSV).

    The scores travel inside the model file (``metadata['card']``) so a test can check that
    the weights still reproduce them.
    """
    payload = torch.load(model_in, map_location="cpu", weights_only=False)
    half = half_precision(payload)
    torch.set_num_threads(1)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weights = folder / "half.pt"
        torch.save({**payload, "state_dict": half}, weights)
        model, info = load_cellpose(weights, device)
        trained = info["metadata"]["object_diameter"]
        named = {"painted check": track.paint_check(folder), **sets}
        settings = replace(segment_settings, diameter_source="estimate")
        frames = []
        for name, sheet in named.items():
            frame = score_spreads(
                model, trained, sheet, settings, name, track.estimate, track.baseline
            )
            frames.append(frame.assign(set=name))
            scores = pooled_scores(frame)
            log.info(
                "%s: F1@0.5 %.3f, AP@0.5 %.3f over %d %s",
                name, scores["f1"], scores["ap"], len(frame), track.images,
            )  # fmt: skip
    scores = pd.concat(frames, ignore_index=True)
    summary = {
        name: {
            "images": len(part),
            **pooled_scores(part),
            # the model's own F1 beside the merged one, where the M-FISH colour merge is on
            **(
                {"dapi_only_f1": pooled_scores(part, "dapi_only_")["f1"]}
                if settings.colour_merge
                else {}
            ),
            "baseline_f1": pooled_scores(part, "baseline_")["f1"],
            "baseline_ap": pooled_scores(part, "baseline_")["ap"],
            "found_per_image": float(part["found"].mean()),
            "truth_per_image": float(part["truth"].mean()),
            "seconds_per_image": float(part["seconds"].mean()),
        }
        for name, part in scores.groupby("set", sort=False)
    }
    card = {
        "summary": summary,
        "check": {
            "images": CHECK_IMAGES,
            "seed": CHECK_SEED,
            "f1": summary["painted check"]["f1"],
        },
        "machine": model_files.machine(),
        "provenance": dict(provenance),
        "inference": asdict(settings),
    }
    write_release(
        payload, half, card,
        lambda sha256: _card_text(payload, card, scores, sha256, model_out, track),
        scores, (model_out, card_out, scores_out),
    )  # fmt: skip
    return card


def _card_text(
    payload: Mapping[str, Any],
    card: Mapping[str, Any],
    scores: pd.DataFrame,
    sha256: str,
    model_out: str | Path,
    track: Track,
) -> str:
    """The model card as Markdown."""
    metadata, provenance, box = payload["metadata"], card["provenance"], card["machine"]
    summary = pd.DataFrame(card["summary"]).T.astype({"images": int})
    merged = "dapi_only_f1" in summary
    merge_note = (
        "`dapi_only_f1` is the model before the M-FISH colour merge (the same where a sheet "
        "names no fluor channels); "
        if merged
        else ""
    )
    summary_columns = [
        "set", "images", "f1", "ap", "precision", "recall",
        *(["dapi_only_f1"] if merged else []),
        "baseline_f1", "baseline_ap", "found_per_image", "truth_per_image", "seconds_per_image",
    ]  # fmt: skip
    summary_table = markdown_table(summary.reset_index(names="set")[summary_columns])
    per_image_columns = [
        "set", "sample", "truth", "found", "f1", "ap", "baseline_f1", "baseline_ap",
        "diameter", "truth_diameter", "seconds",
    ]  # fmt: skip
    per_image = markdown_table(scores[scores["set"] != "painted check"][per_image_columns])
    settings = yaml.safe_dump(
        dict(provenance["settings"]), sort_keys=False, default_flow_style=None
    ).strip()
    trained_on = metadata.get("machine", box)
    check = card["check"]
    facts = [
        f"File: `{Path(model_out).name}`, SHA-256 `{sha256}`",
        f"Made by: `{track.command}` (config: {provenance['configfiles']}; commit "
        f"{provenance['commit']}); seed {provenance['seed']}, from which the painted "
        f"{track.images}' seeds derive",
        f"Training data: {len(metadata['train_images'])} {track.training}, painter settings "
        f"below; object diameter {metadata['object_diameter']:.2f} px",
        f"Training: {metadata['epochs']} epochs, {metadata['seconds'] / 60:.1f} min on "
        f"{metadata.get('device', 'cpu')}, {describe_machine(trained_on)}",
        f"Scores measured on {describe_machine(box)}, one CPU thread, at the inference "
        f"settings {inference_text(card['inference'])}",
        f"Scores at IoU 0.5, pooled over {track.images} (TP/FP/FN summed): F1, and AP as "
        f"Cellpose and stardist define it (TP / (TP + FP + FN)); {merge_note}"
        f"`baseline_*` is {track.baseline_text} on the same {track.images}; seconds per "
        "image: segmentation only, model loaded, object size estimated per image",
        f"Painted check set: {check['images']} {track.images} of the default painter, seed "
        f"{check['seed']} (the test suite repaints them and expects F1 {check['f1']:.3f} within "
        "0.02)",
    ]
    bullets = "\n".join(f"- {fact}" for fact in facts)
    return f"""# {track.title}: {Path(model_out).name}

{network_text(payload["spec"], track.training)}; no real image was used for training.
Weights in half precision; every score below is of these half-precision weights, run in
float32.

{bullets}

## Settings that differ from the defaults (config/config.yaml at that commit)

```yaml
{settings}
```

## Scores

{summary_table}

## Per image

{per_image}
"""


def network_text(spec: Mapping[str, Any], training: str) -> str:
    """What a Cellpose model file holds, from its spec: one network, or several run as one
    (``members``), each of its channel ``width``, and what they were trained on."""
    layers = ", ".join(str(n) for n in [2, *spec.get("width", DEFAULT_WIDTH)])
    members = spec.get("members", 1)
    network = f"CPnet [{layers}], 3 outputs"
    if members == 1:
        return f"Cellpose 3.1 network ({network}) trained from scratch on {training}"
    return (
        f"{members} Cellpose 3.1 networks (each {network}) run as one, their flows and "
        f"probabilities averaged, each trained from scratch on its own 1/{members} of the "
        f"{training}"
    )


def inference_text(settings: Mapping[str, Any]) -> str:
    """The Cellpose inference settings of a card's scores as one inline list."""
    return ", ".join(
        f"`{key}` {value}" for key, value in sorted(settings.items()) if value is not None
    )


def describe_machine(box: Mapping[str, Any]) -> str:
    """One line naming a machine and its library versions."""
    return (
        f"{box['cpu']} ({box['cores']} cores, AMX {'yes' if box['amx'] else 'no'}), "
        f"torch {box['torch']}, cellpose {box['cellpose']}, Python {box['python']}"
    )


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table with 3 significant decimals for floats."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
