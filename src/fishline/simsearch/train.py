"""SimSearch training: SupCon with class negatives on clean patches, then a linear classifier
on the frozen embedding (notes, "Training"); strategies that self-learn also use the noisy
patches: SimCLR on them first (the paper's way) and/or pseudo-labels (the noisy patches whose
search label the trained model confirms train the head again; the default, by measurement:
docs/simsearch.md).

Strategies (the ablation of the notes):

- ``pos``: SupCon on the clean positives (+ background); the negatives are dropped.
- ``pos_neg``: SupCon with each anchor's class negatives added to its denominator. Negatives
  are never trained as background: a false proposal of one class may be a cell of another.
- ``pos_selflearn`` / ``pos_neg_selflearn``: the same, self-learning from the noisy patches
  (``self_learning``: ``simclr`` and/or ``pseudo_labels``).
- ``supervised``: the baseline; ``clean`` is the fully labelled set (every truth object and
  background windows), trained with the same SupCon + linear recipe and no negatives, so
  that only the labels differ from the human-in-the-loop strategies.

About 500 lines: the four strategies share one schedule (SimCLR, SupCon, linear head,
pseudo-labels) and its checks; splitting them would split the recipe the ablation compares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fishline import models
from fishline.errors import InputError
from fishline.io import atomic_outputs
from fishline.logging import get_logger
from fishline.nets.simsearch import SimSearchNet
from fishline.simsearch.settings import (
    AugmentSettings,
    LinearSettings,
    SimCLRSettings,
    SupConSettings,
    TrainSettings,
)
from fishline.train.loop import TrainingRun, torch_settings
from fishline.train.losses import nt_xent

log = get_logger("simsearch.train")

STRATEGIES = ("pos", "pos_neg", "pos_selflearn", "pos_neg_selflearn", "supervised")
WITH_NEGATIVES = ("pos_neg", "pos_neg_selflearn")
SELF_LEARNING = ("pos_selflearn", "pos_neg_selflearn")
BACKGROUND = "background"


def mixed_precision(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA (the GPU path of the design); a no-op context on the CPU, where
    runs stay float32 and deterministic. Losses are computed in float32 on its outputs."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def supcon_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    class_negatives: dict[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., L_out) with class negatives.

    For anchor i with positives P(i) (same label, not i):
    ``l_i = -1/|P(i)| sum_{p in P(i)} log exp(s_ip/t) / D_i`` with
    ``D_i = sum_{a != i} exp(s_ia/t) + sum_{n in N(y_i)} exp(s_in/t)``, where N(y_i) are
    the rows of ``class_negatives[y_i]`` (projections of that class's flagged negatives).
    s is the cosine similarity. Anchors without a positive are skipped; the loss is the
    mean over the others (0 when there are none).
    """
    z = F.normalize(z, dim=1)
    count = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(count, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    terms = [logits]
    if class_negatives:
        width = max(n.shape[0] for n in class_negatives.values())
        extra = torch.full((count, width), float("-inf"), device=z.device, dtype=z.dtype)
        for label, negatives in class_negatives.items():
            rows = labels == label
            if rows.any() and negatives.shape[0]:
                sims = z[rows] @ F.normalize(negatives, dim=1).T / temperature
                extra[rows, : negatives.shape[0]] = sims
        terms.append(extra)
    log_denominator = torch.logsumexp(torch.cat(terms, dim=1), dim=1)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    has = positives.any(dim=1)
    if not has.any():
        return z.sum() * 0.0
    log_prob = logits - log_denominator[:, None]
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(1)) / positives.sum(1).clamp_min(1)
    return per_anchor[has].mean()


def augment_batch(
    images: torch.Tensor, settings: AugmentSettings, generator: torch.Generator
) -> torch.Tensor:
    """Augment a float batch (B x C x S x S in [0, 1]) on its device, every draw from
    ``generator``: flips, 90-degree rotations, solarize, coarse dropout, brightness and
    contrast (:class:`~fishline.simsearch.settings.AugmentSettings`)."""
    batch, _, height, width = images.shape
    device = images.device

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device)

    out = images
    if settings.flip:
        flip = (draw(batch) < 0.5).view(batch, 1, 1, 1)
        out = torch.where(flip, out.flip(-1), out)
    if settings.rotate and height == width:
        turns = (draw(batch) * 4).long().clamp_max(3)
        rotated = torch.stack([torch.rot90(out, k, dims=(2, 3)) for k in range(4)])
        out = rotated[turns, torch.arange(batch, device=device)]
    solarize = settings.solarize
    chosen = (draw(batch) < solarize.p).view(batch, 1, 1, 1)
    out = torch.where(chosen & (out >= solarize.threshold), 1.0 - out, out)
    dropout = settings.dropout
    side_y = max(1, round(dropout.size * height))
    side_x = max(1, round(dropout.size * width))
    top = (draw(batch) * (height - side_y + 1)).long().view(batch, 1, 1, 1)
    left = (draw(batch) * (width - side_x + 1)).long().view(batch, 1, 1, 1)
    rows = torch.arange(height, device=device).view(1, 1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    hole = (rows >= top) & (rows < top + side_y) & (cols >= left) & (cols < left + side_x)
    drop = (draw(batch) < dropout.p).view(batch, 1, 1, 1)
    out = out.masked_fill(hole & drop, 0.0)
    low, high = settings.contrast
    contrast = (low + (high - low) * draw(batch)).view(batch, 1, 1, 1)
    brightness = (settings.brightness * (2 * draw(batch) - 1)).view(batch, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean + brightness
    return out.clamp(0.0, 1.0)


def oversample(labels: np.ndarray, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices drawn with replacement, weight 1 / (size of the sample's class), so
    every class is drawn equally often on average (weighted oversampling)."""
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    weights = torch.as_tensor(1.0 / sizes[inverse], dtype=torch.float64)
    return torch.multinomial(weights, count, replacement=True, generator=generator)


def prepare(stack: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """uint8 N x C x h x w patches -> float N x C x size x size in [0, 1] on ``device``."""
    images = torch.as_tensor(np.asarray(stack), device=device).float() / 255.0
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images


def _check_set(stack: np.ndarray, table: pd.DataFrame, where: str) -> None:
    """A patch set must be N x C x h x w uint8 with a table that indexes it."""
    if stack.ndim != 4 or stack.dtype != np.uint8:
        raise InputError(
            where, f"expected an N x C x h x w uint8 stack, got {stack.shape} {stack.dtype}"
        )
    missing = [c for c in ("index", "label") if c not in table.columns]
    if missing:
        raise InputError(where, f"table lacks column(s) {missing}")
    if len(table) != len(stack) or not np.array_equal(table["index"], np.arange(len(stack))):
        raise InputError(where, f"table rows do not index the {len(stack)} stack patches")


def _split_negatives(
    stack: np.ndarray, table: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The clean patches to train on and, apart, the flagged negatives (role ``negative``):
    those enter only the SupCon denominators of their class (strategies with negatives)."""
    negative = np.zeros(len(table), dtype=bool)
    if "role" in table.columns:
        negative = (table["role"] == "negative").to_numpy()
    return (
        stack[~negative],
        table[~negative].reset_index(drop=True),
        stack[negative],
        table[negative].reset_index(drop=True),
    )


def _stepped(
    optimizer: torch.optim.Optimizer, stage: SimCLRSettings | SupConSettings
) -> torch.optim.lr_scheduler.StepLR:
    """Step decay: the learning rate times ``gamma`` every ``step`` epochs."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=stage.step, gamma=stage.gamma)


def sized_schedule(stage: SupConSettings, steps: int) -> SupConSettings:
    """``stage`` with enough whole epochs of ``steps`` optimiser steps to make at least
    ``stage.min_steps`` steps, and its learning-rate ``step`` stretched alike (the same
    number of decays): a user marks 20-100 patches, which 3 epochs of 32 train for 3-12 steps.
    """
    epochs = max(stage.epochs, math.ceil(stage.min_steps / steps))
    stretch = epochs / stage.epochs
    return replace(stage, epochs=epochs, step=max(1, round(stage.step * stretch)))


def _fit(
    stage: SimCLRSettings | SupConSettings | LinearSettings,
    name: str,
    steps: int,
    batch_size: int,
    draw_order: Callable[[], torch.Tensor],
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
) -> list[dict[str, Any]]:
    """Run one stage: each epoch draws an order of items (``draw_order``), each of its
    ``steps`` steps takes the next ``batch_size`` of them, computes ``loss_of(chosen)`` and
    makes one optimiser step; the scheduler steps once per epoch. Returns the history rows
    (stage, epoch from 0, loss, seconds)."""
    order = torch.empty(0, dtype=torch.long)

    def step(i: int) -> dict[str, float]:
        nonlocal order
        position = i % steps
        if position == 0:
            order = draw_order()
        loss = loss_of(order[position * batch_size : (position + 1) * batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None and position == steps - 1:
            scheduler.step()
        return {"loss": float(loss.detach())}

    run = TrainingRun(None, asdict(stage), [], {}, stage.epochs * steps, steps)
    return run.fit(step, lambda done: {"stage": name, "epoch": done // steps - 1}, name)


def _simclr(
    model: SimSearchNet,
    images: torch.Tensor,
    labels: np.ndarray,
    settings: TrainSettings,
    generator: torch.Generator,
    sampler: torch.Generator,
) -> list[dict[str, Any]]:
    """Self-supervised stage: NT-Xent on two augmented views of the noisy patches."""
    stage = settings.simclr
    if stage.freeze_early:
        model.freeze_early()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=stage.lr)
    scheduler = _stepped(optimizer, stage)
    batch_size = min(stage.batch_size, len(images))
    steps = max(1, len(images) // batch_size)
    model.train()

    def loss_of(chosen: torch.Tensor) -> torch.Tensor:
        batch = images[chosen]
        first = augment_batch(batch, settings.augment, generator)
        second = augment_batch(batch, settings.augment, generator)
        with mixed_precision(images.device):
            views = model.project(model.embed(torch.cat([first, second]))).float()
        return nt_xent(*views.chunk(2), stage.temperature)

    def draw_order() -> torch.Tensor:
        return oversample(labels, steps * batch_size, sampler).to(images.device)

    return _fit(stage, "simclr", steps, batch_size, draw_order, loss_of, optimizer, scheduler)


def _supcon(
    model: SimSearchNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    negatives: dict[int, torch.Tensor],
    settings: TrainSettings,
    generator: torch.Generator,
    sampler: torch.Generator,
    name: str = "supcon",
) -> list[dict[str, Any]]:
    """Supervised contrastive stage on the clean patches, class negatives in the denominators;
    ``name`` labels its history rows."""
    stage = settings.supcon
    if stage.freeze_early:
        model.freeze_early()
    batch_size = min(stage.batch_size, len(images))
    steps = max(1, math.ceil(len(images) / batch_size))
    stage = sized_schedule(stage, steps)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=stage.lr)
    scheduler = _stepped(optimizer, stage)
    per_class = stage.negatives_per_class
    model.train()

    def loss_of(chosen: torch.Tensor) -> torch.Tensor:
        views = [augment_batch(images[chosen], settings.augment, generator)]
        for pool in negatives.values():
            pick = torch.randint(
                len(pool), (min(per_class, len(pool)),), generator=generator, device=pool.device
            )
            views.append(augment_batch(pool[pick], settings.augment, generator))
        # one forward pass for anchors and negatives (batch norm never sees a batch of 1)
        with mixed_precision(images.device):
            projected = model.project(model.embed(torch.cat(views))).float()
        z, *drawn = projected.split([len(v) for v in views])
        class_negatives = dict(zip(negatives, drawn, strict=True))
        return supcon_loss(z, labels[chosen], stage.temperature, class_negatives)

    def draw_order() -> torch.Tensor:
        return oversample(labels.cpu().numpy(), steps * batch_size, sampler).to(images.device)

    return _fit(stage, name, steps, batch_size, draw_order, loss_of, optimizer, scheduler)


def dihedral_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The 8 views of N x C x h x w patches under 90-degree rotations and a flip (cells
    have no up and no handedness)."""
    views = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    return views + [view.flip(-1) for view in views]


def confirmed_labels(
    model: SimSearchNet, images: torch.Tensor, labels: torch.Tensor, min_confidence: float
) -> torch.Tensor:
    """(N,) bool: the patches whose given label (the search's, for noisy patches) the trained
    model confirms, i.e. gives a probability of at least ``min_confidence``, averaged over the
    patch's 8 dihedral views. The confidence filter of pseudo-label self-learning."""
    model.eval()
    probabilities = torch.zeros(len(images), len(model.classes), device=images.device)
    with torch.no_grad(), mixed_precision(images.device):
        for chunk in torch.arange(len(images), device=images.device).split(256):
            for view in dihedral_views(images[chunk]):
                probabilities[chunk] += F.softmax(model(view).float(), dim=1) / 8
    return probabilities.gather(1, labels[:, None])[:, 0] >= min_confidence


def _confirmed_noisy(
    model: SimSearchNet,
    images: torch.Tensor,
    table: pd.DataFrame,
    index: dict[str, int],
    min_confidence: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy patches whose search label (a class of ``index``) the trained model confirms
    (:func:`confirmed_labels`), with those labels as class indices: the pseudo-labels."""
    device = images.device
    known = table["label"].isin(list(index)).to_numpy(copy=True)
    labels = torch.as_tensor(table["label"][known].map(index).to_numpy(copy=True), device=device)
    images = images[torch.as_tensor(known, device=device)]
    keep = confirmed_labels(model, images, labels, min_confidence)
    log.info("%d of %d noisy patches confirmed as pseudo-labels", int(keep.sum()), len(keep))
    return images[keep], labels[keep]


def _linear(
    model: SimSearchNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    sampler: torch.Generator,
    name: str = "linear",
) -> list[dict[str, Any]]:
    """Linear stage: the trunk frozen, one fc layer with cross-entropy on the embeddings of
    the clean patches and their flips/rotations (computed once: the trunk does not change);
    ``name`` labels its history rows."""
    stage = settings.linear
    model.freeze_backbone()
    model.eval()
    views = dihedral_views(images)
    with torch.no_grad(), mixed_precision(images.device):
        embedded = torch.cat([model.embed(view) for view in views]).float()
    targets = labels.repeat(len(views))
    model.classifier.reset_parameters()
    optimizer = torch.optim.Adam(model.classifier.parameters(), lr=stage.lr)
    batch_size = min(stage.batch_size, len(embedded))
    steps = max(1, math.ceil(len(embedded) / batch_size))

    def loss_of(chosen: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model.classify(embedded[chosen]), targets[chosen])

    def draw_order() -> torch.Tensor:
        return oversample(targets.cpu().numpy(), steps * batch_size, sampler).to(images.device)

    return _fit(stage, name, steps, batch_size, draw_order, loss_of, optimizer, None)


def train_simsearch(
    clean: tuple[np.ndarray, pd.DataFrame],
    noisy: tuple[np.ndarray, pd.DataFrame] | None,
    settings: TrainSettings,
    strategy: str,
    seed: int,
    device: str,
    threads: int,
    model_path: str,
    history_path: str,
) -> dict[str, Any]:
    """Train a SimSearch detector with one ``strategy`` (module docstring) and save it.
    (9 parameters, over 80 lines: the rule's inputs, settings and outputs; the strategy's
    stages (SimCLR, SupCon, linear head) share one seeded torch session.)

    ``clean`` / ``noisy`` are (uint8 N x C x h x w stack, table) patch sets; the table needs
    ``index`` and ``label`` (class name or ``background``), and ``role`` / ``negative_of``
    for the negatives (role ``negative``, label background, negative_of = the class).
    ``settings``: :class:`~fishline.simsearch.settings.TrainSettings`. The classes are the
    target labels of the clean set (sorted) + ``background``. Writes the model (models.save,
    kind ``simsearch``) and the per-epoch history (stage, epoch, loss) as Parquet; returns
    the saved metadata with the classes and the training seconds (kept out of the file:
    same seed, same bytes).
    """
    if strategy not in STRATEGIES:
        raise InputError("strategy", f"unknown strategy '{strategy}'; known: {list(STRATEGIES)}")
    selflearn = strategy in SELF_LEARNING
    if selflearn and noisy is None:
        raise InputError("strategy", f"'{strategy}' needs noisy patches, none given")
    stack, table = clean
    _check_set(stack, table, "clean patches")
    if selflearn:
        _check_set(*noisy, "noisy patches")
        if noisy[0].shape[1] != stack.shape[1]:
            raise InputError(
                "noisy patches", f"{noisy[0].shape[1]} channels, the clean ones {stack.shape[1]}"
            )
    stack, table, negative_stack, negative_table = _split_negatives(stack, table)
    targets = sorted(set(table["label"]) - {BACKGROUND})
    if not targets:
        raise InputError("clean patches", "no target-class patch to train on", item="label")
    classes = [*targets, BACKGROUND]
    started = time.perf_counter()
    with torch_settings(device, threads, seed) as chosen:
        generator = torch.Generator(device=chosen).manual_seed(seed)  # augmentations
        sampler = torch.Generator().manual_seed(seed + 1)  # oversampling (CPU weights)
        size = settings.input_size
        model = SimSearchNet(
            classes,
            stack.shape[1],
            settings.backbone,
            projection=settings.projection,
            weights=settings.weights,
        ).to(chosen)
        history: list[dict[str, Any]] = []
        methods = settings.self_learning if selflearn else ()
        if methods:
            noisy_images = prepare(noisy[0], size, chosen)
        if "simclr" in methods:
            history += _simclr(
                model, noisy_images, noisy[1]["label"].to_numpy(), settings, generator, sampler
            )
        images = prepare(stack, size, chosen)
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.as_tensor(table["label"].map(index).to_numpy(copy=True), device=chosen)
        negatives: dict[int, torch.Tensor] = {}
        if strategy in WITH_NEGATIVES and len(negative_table):
            pool = prepare(negative_stack, size, chosen)
            for name in targets:
                rows = (negative_table["negative_of"] == name).to_numpy(copy=True)
                if rows.any():
                    negatives[index[name]] = pool[torch.as_tensor(rows, device=chosen)]
        history += _supcon(model, images, labels, negatives, settings, generator, sampler)
        history += _linear(model, images, labels, settings, generator, sampler)
        pseudo_labelled = 0
        if "pseudo_labels" in methods:
            pseudo_images, pseudo_labels = _confirmed_noisy(
                model, noisy_images, noisy[1], index, settings.pseudo_labels.min_confidence
            )
            pseudo_labelled = len(pseudo_labels)
            images = torch.cat([images, pseudo_images])
            labels = torch.cat([labels, pseudo_labels])
            if settings.pseudo_labels.supcon:
                model.unfreeze()
                history += _supcon(
                    model, images, labels, negatives, settings, generator, sampler, "supcon_pseudo"
                )
            history += _linear(model, images, labels, settings, generator, sampler, "linear_pseudo")
        model.cpu().eval()
    metadata = {
        "strategy": strategy,
        "patch": [int(stack.shape[2]), int(stack.shape[3])],
        "input_size": size,
        "seed": seed,
        "clean": len(table),
        "noisy": len(noisy[1]) if selflearn else 0,
        "pseudo_labelled": pseudo_labelled,
        "negatives": int(sum(len(v) for v in negatives.values())),
    }
    spec = {
        "classes": classes,
        "in_channels": int(stack.shape[1]),
        "backbone": settings.backbone,
        "projection": settings.projection,
    }
    with atomic_outputs(history_path) as (temp,):
        pd.DataFrame(history, columns=["stage", "epoch", "loss"]).to_parquet(temp, index=False)
    models.save(model_path, model, "simsearch", spec, classes, metadata)
    seconds = round(time.perf_counter() - started, 2)
    log.info("trained %s (%s) in %.1f s", strategy, ", ".join(classes), seconds)
    return {**metadata, "classes": classes, "seconds": seconds}
