"""The chromosome classifier (normal vs aberration, ResNet-18): training on real and
synthetic crops, precision/recall/F1 of the aberration class over seeds, 512-d features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_fscore_support

from fishline import models
from fishline.errors import InputError
from fishline.fish.classifier import prepare_set, to_device
from fishline.io import atomic_outputs, read_patch_set, read_stack
from fishline.logging import get_logger
from fishline.nets.chrom import ChromNet
from fishline.schema import default, setting_default, typed_settings
from fishline.train.augment import AUGMENTATIONS, augment
from fishline.train.loop import TrainingRun, setup_device

log = get_logger("chromosomes.classifier")
CLASSES = ["normal", "aberration"]


def load_crops(
    stack: str | Path,
    table: str | Path,
    size: int,
    kept: str | Path | None = None,
    labelled: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame]:
    """A crop set as (float16 images in [0, 1] at ``size``, labels, table).

    With ``labelled`` only normal/aberration crops are kept (unmatched crops have no
    truth); with ``kept`` (a filter's table: ``index`` and ``kept``) only the kept rows.
    """
    images, frame = read_patch_set(stack, table)
    _, meta = read_stack(stack)
    if images.ndim != 4:
        raise InputError(str(stack), f"expected an N x C x H x W crop stack, got {images.shape}")
    keep = np.ones(len(frame), bool)
    if labelled:
        if "label" not in frame:
            raise InputError(str(table), "no 'label' column: the crops carry no annotation")
        keep &= frame["label"].isin(CLASSES).to_numpy()
    if kept is not None:
        chosen = pd.read_parquet(kept)
        if not {"index", "kept"} <= set(chosen):
            raise InputError(str(kept), "needs the columns 'index' and 'kept'")
        if len(chosen) and chosen["index"].max() >= len(frame):
            raise InputError(str(kept), f"indexes rows beyond the {len(frame)} crops of {stack}")
        inside = np.zeros(len(frame), bool)
        inside[chosen.loc[chosen["kept"], "index"].to_numpy()] = True
        keep &= inside
    images, frame = images[keep], frame[keep].reset_index(drop=True)
    scale = (
        float((1 << int(meta["bit_depth"])) - 1)
        if "bit_depth" in meta
        else float(np.iinfo(images.dtype).max)
    )
    tensor = torch.from_numpy(images.astype(np.float32))
    prepared = (
        prepare_set(tensor, scale, size)
        if len(tensor)
        else torch.zeros((0, images.shape[1], size, size), dtype=torch.float16)
    )
    labels = frame["label"].map({c: i for i, c in enumerate(CLASSES)}) if "label" in frame else None
    label_tensor = torch.from_numpy(
        labels.fillna(-1).to_numpy(np.int64).copy()
        if labels is not None
        else -np.ones(len(frame), np.int64)
    )
    return prepared, label_tensor, frame


@dataclass(frozen=True)
class ClassifierAugment:
    """The paper's augmentations besides flips: rotation up to ``rotation`` degrees either
    way and a zoom factor drawn from ``scale``."""

    rotation: float = setting_default("chromosomes.classifier.augment.rotation")
    scale: tuple[float, float] = setting_default("chromosomes.classifier.augment.scale")


@dataclass(frozen=True)
class ClassifierSettings:
    """Training settings of the chromosome classifier (config block
    ``chromosomes.classifier``; each default is the schema's, its meaning in
    config/README.md). The block's ``seeds`` (how many) is the workflow's: it passes the
    seeds themselves to :func:`train_classifiers`."""

    epochs: int = setting_default("chromosomes.classifier.epochs")
    batch_size: int = setting_default("chromosomes.classifier.batch_size")
    lr: float = setting_default("chromosomes.classifier.lr")
    input_size: int = setting_default("chromosomes.classifier.input_size")
    augment: ClassifierAugment = field(default_factory=ClassifierAugment)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> ClassifierSettings:
        """The settings of a ``chromosomes.classifier`` block (every key given)."""
        return typed_settings(cls, block, "chromosomes.classifier", ignore=("seeds",))


def augment_settings(settings: ClassifierAugment) -> dict[str, Any]:
    """The paper's augmentations (flips, rotation, crop-like zoom) for :func:`augment`."""
    chosen = {name: {"enabled": False} for name in AUGMENTATIONS}
    chosen["rotation"] = {"enabled": True, "degrees": settings.rotation}
    chosen["flip"] = {"enabled": True}
    chosen["scale"] = {"enabled": True, "range": list(settings.scale)}
    return chosen


def train_one(
    images: torch.Tensor,
    labels: torch.Tensor,
    settings: ClassifierSettings,
    augmented: bool,
    seed: int,
    dev: torch.device,
) -> ChromNet:
    """Train one ResNet-18 with Adam and cross-entropy; flips, rotation and zoom when
    ``augmented`` (applied on the device, batched, seeded)."""
    torch.manual_seed(seed)
    model = ChromNet(len(CLASSES), images.shape[1]).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    order = torch.Generator().manual_seed(seed)
    aug_generator = torch.Generator(device=dev).manual_seed(seed + 1)
    aug = augment_settings(settings.augment)
    batch = settings.batch_size
    steps = max(1, len(labels) // batch)
    use_bf16 = dev.type == "cuda"
    run = TrainingRun(
        None, asdict(settings), [], {}, settings.epochs * steps, steps, label=f"seed {seed}"
    )
    permutation = torch.empty(0, dtype=torch.long)

    def step(i: int) -> dict[str, float]:
        nonlocal permutation
        position = i % steps
        if position == 0:
            model.train()
            permutation = torch.randperm(len(labels), generator=order)
        index = permutation[position * batch : (position + 1) * batch]
        x = to_device(images[index], dev)
        if augmented:
            x = augment(x, aug, aug_generator)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = F.cross_entropy(model(x).float(), labels[index].to(dev))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    run.fit(step, lambda done: {"epoch": done // steps}, desc=f"seed {seed}")
    return model.eval()


def run_model(
    model: ChromNet, images: torch.Tensor, dev: torch.device, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(softmax probabilities, 512-d features) of a prepared image set."""
    probabilities, features = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = to_device(images[start : start + batch], dev)
            f = model.features(x).float()
            probabilities.append(torch.softmax(model.net.fc(f), 1).cpu().numpy())
            features.append(f.cpu().numpy())
    if not probabilities:
        return np.zeros((0, len(CLASSES)), np.float32), np.zeros((0, 512), np.float32)
    return np.concatenate(probabilities), np.concatenate(features)


def aberration_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of the aberration class (label 1)."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=[1], average=None, zero_division=0
    )
    return {"precision": float(precision[0]), "recall": float(recall[0]), "f1": float(f1[0])}


def train_classifiers(
    train: tuple[str, str],
    synthetic: Sequence[tuple[str, str, str | None]],
    test: tuple[str, str],
    settings: ClassifierSettings,
    augmented: bool,
    seeds: Sequence[int],
    model_paths: Sequence[str | Path],
    metrics_path: str | Path,
    predictions_path: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """Train one classifier per seed on real crops (+ synthetic aberrations) and score each
    on the real test crops; write the models, a per-seed metrics table and predictions.
    (11 parameters, over 80 lines: the rule's inputs, settings, outputs and resources as it
    passes them; every seed's training shares the crops loaded once.)

    ``synthetic`` lists (stack, table, kept table or None) of generated aberration sets.
    """
    if len(model_paths) != len(seeds):
        raise InputError("chromosomes.classifier.seeds", "one model path per seed is needed")
    dev = setup_device(device, threads, int(seeds[0]))
    size = settings.input_size
    images, labels, _ = load_crops(*train, size)
    if not (labels == 1).any():
        raise InputError(train[1], "no 'aberration' crops to train on (empty class)", item="label")
    parts, counts = [images], {"real": len(labels), "synthetic": 0}
    label_parts = [labels]
    for stack, table, kept in synthetic:
        extra, _, _frame = load_crops(stack, table, size, kept=kept, labelled=False)
        if extra.shape[1:] != images.shape[1:]:
            raise InputError(
                str(stack),
                f"crops {tuple(extra.shape[1:])} differ from real {tuple(images.shape[1:])}",
            )
        parts.append(extra)
        label_parts.append(torch.ones(len(extra), dtype=torch.long))
        counts["synthetic"] += len(extra)
    all_images, all_labels = torch.cat(parts), torch.cat(label_parts)
    test_images, test_labels, test_frame = load_crops(*test, size)
    log.info(
        "training on %d real (%d aberrations) + %d synthetic crops; testing on %d",
        counts["real"],
        int((labels == 1).sum()),
        counts["synthetic"],
        len(test_labels),
    )
    rows, predictions = [], []
    for seed, path in zip(seeds, model_paths, strict=True):
        model = train_one(all_images, all_labels, settings, augmented, int(seed), dev)
        probabilities, _ = run_model(model, test_images, dev)
        predicted = probabilities.argmax(1)
        rows.append(
            {
                "seed": int(seed),
                **aberration_scores(test_labels.numpy(), predicted),
                "accuracy": float((predicted == test_labels.numpy()).mean())
                if len(predicted)
                else 0.0,
                "train_real": counts["real"],
                "train_synthetic": counts["synthetic"],
                "test_crops": len(test_labels),
                "test_aberrations": int((test_labels == 1).sum()),
            }
        )
        predictions.append(
            pd.DataFrame(
                {
                    "seed": int(seed),
                    "index": test_frame["index"].to_numpy(),
                    "label": test_frame["label"].to_numpy(),
                    "p_aberration": probabilities[:, 1],
                    "predicted": np.array(CLASSES)[predicted] if len(predicted) else [],
                }
            )
        )
        metadata = {
            "seed": int(seed),
            "augmented": augmented,
            "settings": asdict(settings),
            **counts,
        }
        models.save(
            path,
            model.cpu(),
            "chromnet",
            {"classes": 2, "in_channels": images.shape[1]},
            CLASSES,
            metadata,
        )
        model.to(dev)
    metrics = pd.DataFrame(rows)
    with atomic_outputs(metrics_path, predictions_path) as (m_temp, p_temp):
        metrics.to_csv(m_temp, sep="\t", index=False)
        pd.concat(predictions, ignore_index=True).to_parquet(p_temp, index=False)
    return metrics


def extract_features(
    model_path: str | Path,
    sets: dict[str, tuple[str, str]],
    out_path: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """512-d penultimate features (and p(aberration)) of every crop of the named sets."""
    dev = setup_device(device, threads, 0)
    model, payload = models.load(model_path)
    model = model.to(dev)
    size = payload["metadata"]["settings"]["input_size"]
    frames = []
    for name, (stack, table) in sets.items():
        images, _, frame = load_crops(stack, table, size, labelled=False)
        probabilities, features = run_model(model, images, dev)
        frames.append(
            pd.DataFrame(
                {
                    "set": name,
                    "index": frame["index"].to_numpy(),
                    "label": frame["label"].to_numpy() if "label" in frame else "unknown",
                    "p_aberration": probabilities[:, 1],
                    "features": list(features.astype(np.float32)),
                }
            )
        )
        log.info("%s: features of %d crops", name, len(frame))
    out = pd.concat(frames, ignore_index=True)
    with atomic_outputs(out_path) as (temp,):
        out.to_parquet(temp, index=False)
    return out


# The paper's Tables 3, 5 and 6 (aberration class, mean +- std over 10 seeds).
PAPER = {
    ("real", "plain"): ("0.81 ± 0.04", "0.72 ± 0.03", "0.76 ± 0.02"),
    ("real", "augmented"): ("0.83 ± 0.02", "0.78 ± 0.01", "0.81 ± 0.01"),
    ("bbdm", "plain"): ("0.75 ± 0.07", "0.84 ± 0.02", "0.79 ± 0.04"),
    ("cyclegan", "plain"): ("0.85 ± 0.03", "0.14 ± 0.09", "0.23 ± 0.05"),
    ("bbdm_filtered", "augmented"): ("0.84 ± 0.02", "0.83 ± 0.02", "0.84 ± 0.01"),
}
DATA_NAMES = {
    "real": "real",
    "bbdm": "real + BBDM",
    "bbdm_filtered": "real + filtered BBDM",
    "cyclegan": "real + CycleGAN",
}


def compare_table(
    metrics: dict[tuple[str, str], str | Path], table_out: str | Path, html_out: str | Path
) -> pd.DataFrame:
    """One row per (training data, augmentation): our mean ± std over seeds beside the
    paper's numbers (blank where the paper has no such row)."""
    rows = []
    for (data, aug), path in metrics.items():
        frame = pd.read_csv(path, sep="\t")
        row: dict[str, Any] = {
            "training data": DATA_NAMES.get(data, data),
            "augmentation": aug == "augmented",
            "seeds": len(frame),
            "synthetic crops": int(frame["train_synthetic"].iloc[0]),
        }
        for metric in ("precision", "recall", "f1"):
            mean, std = frame[metric].mean(), frame[metric].std(ddof=0)
            row[f"{metric} mean"], row[f"{metric} std"] = (
                round(float(mean), 4),
                round(float(std), 4),
            )
            row[metric] = f"{mean:.2f} ± {std:.2f}"
        for metric, value in zip(
            ("precision", "recall", "F1"), PAPER.get((data, aug), ("",) * 3), strict=True
        ):
            row[f"paper {metric}"] = value
        row["test aberrations"] = int(frame["test_aberrations"].iloc[0])
        rows.append(row)
    table = pd.DataFrame(rows)
    shown = [
        "training data",
        "augmentation",
        "seeds",
        "synthetic crops",
        "precision",
        "recall",
        "f1",
        "paper precision",
        "paper recall",
        "paper F1",
        "test aberrations",
    ]
    with atomic_outputs(table_out, html_out) as (t, h):
        table.to_csv(t, sep="\t", index=False)
        Path(h).write_text(
            "<p>Aberration class on the real annotated test crops, mean ± std over seeds; "
            "the paper's Tables 3, 5 and 6 beside ours.</p>\n" + table[shown].to_html(index=False)
        )
    return table
