"""Training and evaluating the FISH classifier: joint, ce, cl_detached, cl_attached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fishline import models
from fishline.errors import InputError
from fishline.evaluation import write_evaluation
from fishline.io import read_patch_set, read_stack
from fishline.logging import get_logger, progress_bar
from fishline.nets.fish import FishNet
from fishline.schema import default, setting_default, settings_as_config, typed_settings
from fishline.train.augment import augment
from fishline.train.loop import GLOBAL_RNG, TrainingRun, bf16_autocast, cosine_lr, setup_device
from fishline.train.losses import joint_loss, nt_xent
from fishline.uncertainty import certainty

log = get_logger("fish.classifier")


def load_patches(
    stack: str | Path,
    table: str | Path,
    classes: list[str],
    channels: int = 3,
    allow_unknown: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame, float]:
    """Patch set as (uint8/uint16 images, int64 labels, table, full-scale value), checked.

    Class names outside ``classes`` are an error unless ``allow_unknown`` (then label -1).
    """
    images, frame = read_patch_set(stack, table)
    _, meta = read_stack(stack)
    if images.ndim != 4 or images.shape[1] != channels:
        raise InputError(str(stack), f"expected N x {channels} x H x W images, got {images.shape}")
    unknown = sorted(set(frame["class_name"]) - set(classes))
    if unknown and not allow_unknown:
        raise InputError(
            str(table), f"unknown class names {unknown}; known: {classes}", item="class_name"
        )
    labels = frame["class_name"].map({name: i for i, name in enumerate(classes)})
    labels = labels.fillna(-1).to_numpy()  # -1: a class the model does not know
    full_scale = float((1 << int(meta.get("bit_depth", 8 * images.itemsize))) - 1)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), frame, full_scale


def prepare_set(
    images: torch.Tensor, full_scale: float, size: int, chunk: int = 512
) -> torch.Tensor:
    """Scale a whole patch set to [0, 1] and resize it to ``size`` once (float16, CPU).

    Done once before training, so a step only indexes, converts and augments: loading
    never becomes the bottleneck.
    """
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.float16)
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk].float() / full_scale
        if batch.shape[-1] != size:
            batch = F.interpolate(
                batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        out[start : start + chunk] = batch.clamp(0, 1).half()
    return out


def stage_on_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The prepared set on a CUDA device when it takes at most a quarter of its memory
    (paper scale, 18,000 x 3 x 128 x 128 float16: 1.8 GB), so a step indexes on the device
    and copies nothing from the host; on the CPU, or when too large, it stays where it is."""
    if device.type != "cuda":
        return images
    size = images.numel() * images.element_size()
    if size > torch.cuda.get_device_properties(device).total_memory // 4:
        return images
    return images.to(device)


def to_device(
    batch: torch.Tensor, device: torch.device, channels_last: bool | None = None
) -> torch.Tensor:
    """A prepared float16 batch as float32 on ``device``, channels-last when asked (the
    layout bf16 convolutions are fast in, on CUDA and on CPUs alike; None = on CUDA)."""
    if channels_last is None:
        channels_last = device.type == "cuda"
    images = batch.to(device, non_blocking=True).float()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


@dataclass(frozen=True)
class FishTrainSettings:
    """How one FISH classifier trains: its ``method`` and the ``fish.train`` block with the
    model's own changes (config ``fish.models.<name>``; each default is the schema's
    ``fish.train`` value, its meaning in config/README.md). Field ``lambda_`` is config
    key ``lambda``."""

    method: Literal["joint", "ce", "cl_detached", "cl_attached"]
    epochs: int = setting_default("fish.train.epochs")
    pretrain_epochs: int = setting_default("fish.train.pretrain_epochs")
    batch_size: int = setting_default("fish.train.batch_size")
    lr: tuple[float, float] = setting_default("fish.train.lr")
    warmup_steps: int = setting_default("fish.train.warmup_steps")
    cycle_epochs: int = setting_default("fish.train.cycle_epochs")
    lambda_: float = setting_default("fish.train.lambda")
    smoothing: float = setting_default("fish.train.smoothing")
    temperature: float = setting_default("fish.train.temperature")
    input_size: int = setting_default("fish.train.input_size")
    augment: Literal["heavy", "light", "none"] = setting_default("fish.train.augment")
    augment_off: tuple[str, ...] = setting_default("fish.train.augment_off")
    backbone_weights: str | None = setting_default("fish.train.backbone_weights")
    precision: Literal["auto", "bf16", "fp32"] = setting_default("fish.train.precision")

    @classmethod
    def from_config(cls, block: Mapping[str, Any], name: str) -> FishTrainSettings:
        """The settings of model ``name`` from its block: the ``fish.train`` block (every key
        given) with the model's entry of ``fish.models`` over it, as the workflow merges
        them."""
        return typed_settings(cls, block, f"fish.models.{name}")

    def phases(self) -> list[tuple[str, int]]:
        """(objective, epochs) per training phase: contrastive pre-training first for the
        ``cl_*`` methods."""
        if self.method in ("joint", "ce"):
            return [(self.method, self.epochs)]
        final = "detached" if self.method == "cl_detached" else "ce"
        return [("contrastive", self.pretrain_epochs), (final, self.epochs)]


def train_fish_model(
    train_stack: str,
    train_table: str,
    method: FishTrainSettings,
    augmentations: Mapping[str, Any],
    classes: Sequence[str],
    seed: int,
    model_path: str | Path,
    history_path: str | Path,
    checkpoint_path: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> None:
    """Train one FISH classifier as ``method`` says; checkpoint every epoch and resume.

    Parameters
    ----------
    train_stack, train_table
        The painted (or real) training patches and their table.
    method
        The model's training settings; the model file's metadata keep them as a config
        block.
    augmentations
        The augmentation presets (config ``fish.augment``) that ``method.augment`` names.
    classes
        Class names in label order.
    seed
        Seeds the initialisation, the data order and the augmentations.
    model_path, history_path, checkpoint_path
        The model file, its per-epoch history (Parquet) and the checkpoint it resumes from.
    device, threads
        Where it trains, and torch's CPU threads.

    (11 parameters, over 80 lines: the step function is nested, so it shares the objects
    the checkpoint keeps; the paths are the rule's outputs.)
    """
    dev = setup_device(device, threads, seed)
    classes = list(classes)
    raw, labels, _, full_scale = load_patches(train_stack, train_table, classes)
    images = prepare_set(raw, full_scale, method.input_size)
    settings = _augment_settings(augmentations, method)
    use_bf16 = bf16_autocast(dev, method.precision)
    channels_last = use_bf16 or dev.type == "cuda"
    model = _new_model(len(classes), method, dev, channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=method.lr[1])
    data_order = torch.Generator().manual_seed(seed)
    aug_generator = torch.Generator(device=dev).manual_seed(seed + 1)
    schedule = [(objective, e) for objective, count in method.phases() for e in range(count)]
    batch = method.batch_size
    steps_per_epoch = max(1, len(labels) // batch)
    recorded = settings_as_config(method)
    run = TrainingRun(
        checkpoint_path,
        {
            "method": recorded,
            "augment": settings,
            "seed": seed,
            "n": len(labels),
            "classes": classes,
        },
        [raw, labels],
        {
            "model": model,
            "optimizer": optimizer,
            "data_order": data_order,
            "aug_generator": aug_generator,
            "torch_rng": GLOBAL_RNG,  # dropout draws from the global generator
        },
        total=len(schedule) * steps_per_epoch,
        every=steps_per_epoch,
    )
    images, labels = stage_on_device(images, dev), labels.to(dev)
    log.info("bf16 autocast %s, channels-last %s", use_bf16, channels_last)
    epoch_order = torch.empty(0, dtype=torch.long)

    def step(i: int) -> dict[str, float]:
        nonlocal epoch_order
        epoch, position = divmod(i, steps_per_epoch)
        objective, phase_epoch = schedule[epoch]
        if position == 0:
            _set_trainable(model, objective)
            model.train()
            epoch_order = torch.randperm(len(labels), generator=data_order)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(
                method, phase_epoch * steps_per_epoch + position, steps_per_epoch
            )
        index = epoch_order[position * batch : (position + 1) * batch].to(images.device)
        x = to_device(images[index], dev, channels_last)
        loss, parts = _objective(
            model, objective, x, labels[index.to(dev)], settings, aug_generator, method, use_bf16
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach()), **parts}

    def row(done: int) -> dict[str, Any]:
        epoch = done // steps_per_epoch
        lr = optimizer.param_groups[0]["lr"]
        return {"epoch": epoch, "objective": schedule[epoch - 1][0], "lr": lr}

    run.fit(step, row, desc="fish train")
    spec = {"classes": len(classes), "in_channels": 3}
    metadata = {
        "method": recorded,
        "augment": settings,
        "seed": seed,
        "full_scale": full_scale,
        "input_size": method.input_size,
        "epochs": len(schedule),
        "train_images": len(labels),
        # wall time of all epochs (a resumed training's included) and where the last ran
        "seconds": run.seconds,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "machine": models.machine(),
    }
    run.finish(history_path, model_path, model, "fishnet", spec, classes, metadata)


def _new_model(
    classes: int, method: FishTrainSettings, device: torch.device, channels_last: bool
) -> FishNet:
    """The method's FishNet on ``device``, channels-last when asked."""
    model = FishNet(classes, weights=method.backbone_weights).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _learning_rate(method: FishTrainSettings, phase_step: int, steps_per_epoch: int) -> float:
    """The method's cosine schedule (warm-up, restarts every ``cycle_epochs``) at a step of
    the current phase."""
    return cosine_lr(
        phase_step, method.warmup_steps, method.cycle_epochs * steps_per_epoch, *method.lr
    )


def _augment_settings(presets: Mapping[str, Any], method: FishTrainSettings) -> dict[str, Any]:
    """The method's augmentation preset with its switched-off steps disabled."""
    if method.augment == "none":
        chosen = {key: {**value, "enabled": False} for key, value in presets["heavy"].items()}
    else:
        chosen = {key: dict(value) for key, value in presets[method.augment].items()}
    for key in method.augment_off:
        chosen[key]["enabled"] = False
    return chosen


def _set_trainable(model: FishNet, objective: str) -> None:
    """Freeze the backbone for the detached head phase; train everything otherwise."""
    frozen = objective == "detached"
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(not frozen)
    for parameter in model.projection.parameters():
        parameter.requires_grad_(not frozen)


def _objective(
    model: FishNet,
    objective: str,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict[str, Any],
    generator: torch.Generator,
    method: FishTrainSettings,
    use_bf16: bool,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The step's loss and its parts; views are augmented in fp32, the network runs under
    bf16 autocast when ``use_bf16``, the losses in fp32."""
    bf16 = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_bf16)
    if objective in ("joint", "contrastive"):
        first = augment(x, settings, generator)
        second = augment(x, settings, generator)
        with bf16:
            _, z1, logits1 = model(first)
            _, z2, logits2 = model(second)
        if objective == "contrastive":
            loss = nt_xent(z1.float(), z2.float(), method.temperature)
            return loss, {"contrastive": float(loss.detach())}
        return joint_loss(
            (z1.float(), z2.float()),
            (logits1.float(), logits2.float()),
            y,
            method.lambda_,
            method.smoothing,
            method.temperature,
        )
    view = augment(x, settings, generator)
    with bf16:
        _, _, logits = model(view)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=method.smoothing)
    return loss, {"cross_entropy": float(loss.detach())}


@torch.no_grad()
def predict(
    loaded: tuple[torch.nn.Module, dict[str, Any]],
    stack: str | Path,
    table: str | Path,
    device: str = default("device"),
    threads: int = 1,
    batch: int = 256,
    allow_unknown: bool = False,
) -> pd.DataFrame:
    """Per-image predictions: class probabilities, prediction, certainty, 128-d features.

    ``loaded`` is what :func:`fishline.models.load` returns, so a caller predicting several
    sets reads the model file once.
    """
    model, info = loaded
    classes = info["class_names"]
    dev = setup_device(device, threads, 0)
    model.to(dev)
    raw, labels, frame, full_scale = load_patches(
        stack, table, classes, allow_unknown=allow_unknown
    )
    images = prepare_set(raw, full_scale, info["metadata"]["input_size"])
    smoothing = info["metadata"]["method"]["smoothing"]
    probabilities, features = [], []
    for start in progress_bar(range(0, len(labels), batch), desc="predict", unit="batch"):
        x = to_device(images[start : start + batch], dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            representation, _, logits = model(x)
        probabilities.append(torch.softmax(logits.float(), 1).cpu().numpy())
        features.append(representation.float().cpu().numpy())
    p = np.concatenate(probabilities)
    out = pd.DataFrame(
        {"index": frame["index"], "label": labels.numpy(), "class_name": frame["class_name"]}
    )
    out["prediction"] = p.argmax(1)
    out["predicted_class"] = [classes[i] for i in out["prediction"]]
    out["correct"] = out["prediction"] == out["label"]
    out["confidence"] = p.max(1)
    out["certainty"] = certainty(p, smoothing)
    for i, name in enumerate(classes):
        out[f"p_{name}"] = p[:, i]
    out["representation"] = list(np.concatenate(features).round(5))
    return out


def evaluate_fish_model(
    model_path: str,
    stack: str,
    table: str,
    predictions_path: str,
    metrics_path: str,
    device: str = default("device"),
    threads: int = 1,
) -> dict[str, Any]:
    """Predict a patch set and write per-item predictions (Parquet) and metrics (JSON)."""
    loaded = models.load(model_path)
    predictions = predict(loaded, stack, table, device, threads)
    return write_evaluation(predictions, loaded[1]["class_names"], predictions_path, metrics_path)
