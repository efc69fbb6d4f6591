"""CycleGAN baseline (the paper's comparison generator): unpaired DAPI crops (domain A, the
unannotated set's DAPI repeated to the crop's channels) <-> real painted aberration crops
(domain B). LSGAN losses, cycle weight 10, identity weight 0.5 x 10, a 50-image history
pool per discriminator, Adam (2e-4, beta1 0.5), constant then linearly decaying LR."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fishline import models
from fishline.chromosomes.bbdm import conditions_from, load_paired
from fishline.errors import InputError
from fishline.io import atomic_outputs, encode_pages, write_stack
from fishline.logging import get_logger, progress_bar
from fishline.nets.cyclegan import CycleGAN, PatchDiscriminator
from fishline.schema import default, setting_default, settings_as_config, typed_settings
from fishline.train.loop import GLOBAL_RNG, TrainingRun, setup_device

log = get_logger("cyclegan")
_BLOCK = "chromosomes.cyclegan"


@dataclass(frozen=True)
class CycleGANSettings:
    """How the CycleGAN trains (config block ``chromosomes.cyclegan`` but its ``enabled``,
    the workflow's, and its ``sample`` block, :class:`CycleGANSampleSettings`; each default
    is the schema's, its meaning in config/README.md)."""

    filters: int = setting_default(f"{_BLOCK}.filters")
    blocks: int = setting_default(f"{_BLOCK}.blocks")
    disc_filters: int = setting_default(f"{_BLOCK}.disc_filters")
    lr: float = setting_default(f"{_BLOCK}.lr")
    beta1: float = setting_default(f"{_BLOCK}.beta1")
    batch_size: int = setting_default(f"{_BLOCK}.batch_size")
    steps_constant: int = setting_default(f"{_BLOCK}.steps_constant")
    steps_decay: int = setting_default(f"{_BLOCK}.steps_decay")
    cycle_weight: float = setting_default(f"{_BLOCK}.cycle_weight")
    identity_weight: float = setting_default(f"{_BLOCK}.identity_weight")
    pool: int = setting_default(f"{_BLOCK}.pool")
    checkpoint_every: int = setting_default(f"{_BLOCK}.checkpoint_every")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CycleGANSettings:
        """The settings of a ``chromosomes.cyclegan`` block (every key given)."""
        return typed_settings(cls, block, _BLOCK, ignore=("enabled", "sample"))


@dataclass(frozen=True)
class CycleGANSampleSettings:
    """How crops are translated (``chromosomes.cyclegan.sample``): at most ``max_samples``
    (None = all), zero outside the chromosome (``mask_outside``)."""

    max_samples: int | None = setting_default(f"{_BLOCK}.sample.max_samples")
    mask_outside: bool = setting_default(f"{_BLOCK}.sample.mask_outside")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CycleGANSampleSettings:
        """The settings of a ``chromosomes.cyclegan.sample`` block (every key given)."""
        return typed_settings(cls, block, f"{_BLOCK}.sample")


class HistoryPool:
    """Shrivastava et al.'s image buffer: the discriminator sees half old fakes."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch mixing the new fakes with stored ones (and store the new)."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored fakes and the random state, for a resumable checkpoint."""
        return {"images": self.images, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""
        self.images = list(state["images"])
        self.rng.setstate(state["rng"])


def linear_decay(step: int, constant: int, decay: int) -> float:
    """LR factor: 1 for ``constant`` steps, then linearly down to 0 over ``decay`` steps."""
    return 1.0 - max(0, step - constant) / float(decay + 1)


def _flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flips = torch.rand(2, generator=generator)
    dims = [d for d, f in zip((-1, -2), flips, strict=True) if f < 0.5]
    return x.flip(dims) if dims else x


def _train_step(
    net: CycleGAN,
    discriminators: tuple[PatchDiscriminator, PatchDiscriminator],
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    pools: list[HistoryPool],
    a: torch.Tensor,
    b: torch.Tensor,
    weights: tuple[float, float],
) -> dict[str, float]:
    """One step of least-squares CycleGAN: the generators against frozen discriminators
    (adversarial + cycle + identity, ``weights`` = cycle and identity weight), then the
    discriminators on real crops and pooled fakes. Returns the four losses."""
    d_a, d_b = discriminators
    opt_g, opt_d = optimizers
    fake_b, fake_a = net.g_ab(a), net.g_ba(b)
    for d in discriminators:
        d.requires_grad_(False)
    score_b, score_a = d_b(fake_b), d_a(fake_a)
    loss_gan = F.mse_loss(score_b, torch.ones_like(score_b)) + F.mse_loss(
        score_a, torch.ones_like(score_a)
    )
    loss_cycle = F.l1_loss(net.g_ba(fake_b), a) + F.l1_loss(net.g_ab(fake_a), b)
    loss_identity = F.l1_loss(net.g_ab(b), b) + F.l1_loss(net.g_ba(a), a)
    loss_g = loss_gan + weights[0] * loss_cycle + weights[1] * loss_identity
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for d in discriminators:
        d.requires_grad_(True)
    loss_d = torch.zeros((), device=a.device)
    for d, real, fake, pool in ((d_a, a, fake_a, pools[0]), (d_b, b, fake_b, pools[1])):
        real_score, fake_score = d(real), d(pool.query(fake.detach()))
        loss_d = loss_d + 0.5 * (
            F.mse_loss(real_score, torch.ones_like(real_score))
            + F.mse_loss(fake_score, torch.zeros_like(fake_score))
        )
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    losses = {"gan": loss_gan, "cycle": loss_cycle, "identity": loss_identity, "disc": loss_d}
    return {key: float(value.detach()) for key, value in losses.items()}


def train_cyclegan(
    target_stack: str | Path,
    target_table: str | Path,
    source_stack: str | Path,
    source_table: str | Path,
    settings: CycleGANSettings,
    seed: int,
    model_path: str | Path,
    history_path: str | Path,
    checkpoint_path: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> None:
    """Train both generators and discriminators; save the generators (kind ``cyclegan``).
    (11 parameters: the rule's inputs, settings, outputs and resources as it passes them.)"""
    dev = setup_device(device, threads, seed)
    real_b, _, _, info = load_paired(target_stack, target_table)
    if min(real_b.shape[-2:]) < 32:
        raise InputError(
            str(target_stack),
            f"crops of {min(real_b.shape[-2:])} px are too small for the PatchGAN (>= 32)",
        )
    real_a, _, _ = conditions_from(
        source_stack, source_table, info["channel_names"], real_b.shape[-2:]
    )
    channels = real_b.shape[1]
    spec = {"channels": channels, "filters": settings.filters, "blocks": settings.blocks}
    net = models.build("cyclegan", spec).to(dev)
    d_a = PatchDiscriminator(channels, settings.disc_filters).to(dev)
    d_b = PatchDiscriminator(channels, settings.disc_filters).to(dev)
    betas = (settings.beta1, 0.999)
    opt_g = torch.optim.Adam(net.parameters(), lr=settings.lr, betas=betas)
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=settings.lr, betas=betas)
    total = settings.steps_constant + settings.steps_decay
    schedules = [
        torch.optim.lr_scheduler.LambdaLR(
            o, lambda s: linear_decay(s, settings.steps_constant, settings.steps_decay)
        )
        for o in (opt_g, opt_d)
    ]
    pools = [HistoryPool(settings.pool, seed + 2), HistoryPool(settings.pool, seed + 3)]
    order = torch.Generator().manual_seed(seed + 1)
    recorded = settings_as_config(settings)
    run = TrainingRun(
        checkpoint_path,
        {"settings": recorded, "seed": seed, "a": list(real_a.shape), "b": list(real_b.shape)},
        [real_a, real_b],
        {
            "net": net,
            "d_a": d_a,
            "d_b": d_b,
            "opt_g": opt_g,
            "opt_d": opt_d,
            "schedule_g": schedules[0],
            "schedule_d": schedules[1],
            "order": order,
            "torch_rng": GLOBAL_RNG,
            "pool_a": pools[0],
            "pool_b": pools[1],
        },
        total=total,
        every=settings.checkpoint_every,
        unit="step",
    )
    cycle, identity = settings.cycle_weight, settings.identity_weight * settings.cycle_weight
    batch = settings.batch_size

    def step(_: int) -> dict[str, float]:
        a = _flip(real_a[torch.randint(0, len(real_a), (batch,), generator=order)], order).to(dev)
        b = _flip(real_b[torch.randint(0, len(real_b), (batch,), generator=order)], order).to(dev)
        losses = _train_step(net, (d_a, d_b), (opt_g, opt_d), pools, a, b, (cycle, identity))
        for schedule in schedules:
            schedule.step()
        return losses

    run.fit(step, lambda done: {"step": done}, "cyclegan train")
    metadata = {"size": list(real_b.shape[-2:]), "seed": seed, "steps": total, **info}
    run.finish(history_path, model_path, net, "cyclegan", spec, info["channel_names"], metadata)


def sample_cyclegan(
    model_path: str | Path,
    stack: str | Path,
    table: str | Path,
    settings: CycleGANSampleSettings,
    seed: int,
    stack_out: str | Path,
    table_out: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """Translate DAPI crops with the DAPI -> painted generator into a patch set.
    (9 parameters: the rule's inputs, settings, outputs and resources as it passes them.)"""
    dev = setup_device(device, threads, seed)
    net, payload = models.load(model_path)
    net = net.to(dev)
    meta, channels = payload["metadata"], payload["class_names"]
    conditions, frame, scale = conditions_from(stack, table, channels, meta["size"])
    chosen = np.arange(len(frame))
    limit = settings.max_samples
    if limit is not None and limit < len(chosen):
        chosen = np.sort(np.random.default_rng(seed).choice(len(chosen), limit, replace=False))
    dtype = np.dtype(meta["dtype"])
    pages = np.zeros((len(chosen), len(channels), *meta["size"]), dtype)
    with torch.no_grad():
        for start in progress_bar(range(0, len(chosen), 64), desc="cyclegan sample", unit="batch"):
            part = chosen[start : start + 64]
            out = net(conditions[part].to(dev)).float().cpu().numpy()
            if settings.mask_outside:  # zero outside the chromosome, as the real crops
                out = np.where((conditions[part][:, :1] > -1).numpy(), out, -1.0)
            pages[start : start + len(part)] = np.clip(((out + 1) / 2 * scale).round(), 0, scale)
    source = frame.iloc[chosen].reset_index(drop=True)
    result = pd.DataFrame(
        {
            "index": np.arange(len(chosen)),
            "source_index": source["index"].to_numpy(),
            "sample": source["sample"].to_numpy() if "sample" in source else "",
            "instance": source["instance"].to_numpy() if "instance" in source else 0,
            "generator": "cyclegan",
            "label": "aberration",
            "is_aberration": True,
        }
    )
    with atomic_outputs(stack_out, table_out) as (stack_temp, table_temp):
        write_stack(stack_temp, encode_pages(pages, "zlib"), pages.shape, dtype, channels, "zlib")
        result.to_parquet(table_temp, index=False)
    log.info("cyclegan: %d samples", len(result))
    return result
