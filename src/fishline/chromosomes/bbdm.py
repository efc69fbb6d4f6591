"""BBDM training and sampling stages (Li et al. 2023): paired crops (painted target, its DAPI
condition) from a patch set, the conditional UNet trained with EMA, checkpoints and resume,
and painted crops sampled from DAPI crops. The bridge maths is :mod:`fishline.chromosomes.bridge`.

About 415 lines: the typed settings of both stages (a fifth of it, one field per config key)
sit beside the stages that take them, as the other tracks keep theirs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from fishline import models
from fishline.chromosomes.bridge import Bridge, bbdm_loss
from fishline.errors import InputError
from fishline.io import atomic_outputs, encode_pages, read_patch_set, read_stack, write_stack
from fishline.logging import get_logger, progress_bar
from fishline.nets.counter_noise import CounterNormal
from fishline.schema import default, setting_default, settings_as_config, typed_settings
from fishline.seeds import stage_seed
from fishline.train.loop import TrainingRun, setup_device

log = get_logger("bbdm")
_BLOCK = "chromosomes.bbdm"


@dataclass(frozen=True)
class UNetSettings:
    """The conditional UNet's shape (``chromosomes.bbdm.unet``): base width, width
    multiplier and attention per level, residual blocks per level."""

    base: int = setting_default(f"{_BLOCK}.unet.base")
    multipliers: tuple[int, ...] = setting_default(f"{_BLOCK}.unet.multipliers")
    blocks: int = setting_default(f"{_BLOCK}.unet.blocks")
    attention: tuple[bool, ...] = setting_default(f"{_BLOCK}.unet.attention")
    middle_attention: bool = setting_default(f"{_BLOCK}.unet.middle_attention")
    dropout: float = setting_default(f"{_BLOCK}.unet.dropout")


@dataclass(frozen=True)
class EMASettings:
    """Exponential moving average of the weights (``chromosomes.bbdm.train.ema``)."""

    enabled: bool = setting_default(f"{_BLOCK}.train.ema.enabled")
    decay: float = setting_default(f"{_BLOCK}.train.ema.decay")
    every: int = setting_default(f"{_BLOCK}.train.ema.every")
    start: int = setting_default(f"{_BLOCK}.train.ema.start")


@dataclass(frozen=True)
class PlateauSettings:
    """torch's ReduceLROnPlateau on the step loss (``chromosomes.bbdm.train.plateau``)."""

    factor: float = setting_default(f"{_BLOCK}.train.plateau.factor")
    patience: int = setting_default(f"{_BLOCK}.train.plateau.patience")
    cooldown: int = setting_default(f"{_BLOCK}.train.plateau.cooldown")
    threshold: float = setting_default(f"{_BLOCK}.train.plateau.threshold")
    min_lr: float = setting_default(f"{_BLOCK}.train.plateau.min_lr")


@dataclass(frozen=True)
class BBDMTrainSettings:
    """The training schedule (``chromosomes.bbdm.train``)."""

    steps: int = setting_default(f"{_BLOCK}.train.steps")
    batch_size: int = setting_default(f"{_BLOCK}.train.batch_size")
    lr: float = setting_default(f"{_BLOCK}.train.lr")
    loss: Literal["l1", "l2"] = setting_default(f"{_BLOCK}.train.loss")
    flip: bool = setting_default(f"{_BLOCK}.train.flip")
    checkpoint_every: int = setting_default(f"{_BLOCK}.train.checkpoint_every")
    ema: EMASettings = field(default_factory=EMASettings)
    plateau: PlateauSettings = field(default_factory=PlateauSettings)


@dataclass(frozen=True)
class BBDMSettings:
    """What the BBDM trains with (config block ``chromosomes.bbdm`` but its ``sample``
    block, :class:`BBDMSampleSettings`; each default is the schema's, its meaning in
    config/README.md): the bridge schedule (``timesteps``, ``m_range``, ``max_var``), the
    network's ``objective``, the UNet and the training.

    Examples
    --------
    >>> from dataclasses import replace
    >>> settings = BBDMSettings()
    >>> settings = replace(settings, train=replace(settings.train, steps=2000))
    >>> settings.bridge().timesteps
    1000
    """

    timesteps: int = setting_default(f"{_BLOCK}.timesteps")
    m_range: tuple[float, float] = setting_default(f"{_BLOCK}.m_range")
    max_var: float = setting_default(f"{_BLOCK}.max_var")
    objective: Literal["grad", "noise", "ysubx"] = setting_default(f"{_BLOCK}.objective")
    unet: UNetSettings = field(default_factory=UNetSettings)
    train: BBDMTrainSettings = field(default_factory=BBDMTrainSettings)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> BBDMSettings:
        """The settings of a ``chromosomes.bbdm`` block (every key given; ``sample`` is
        :class:`BBDMSampleSettings`' and may be left out)."""
        return typed_settings(cls, block, _BLOCK, ignore=("sample",))

    def bridge(self) -> Bridge:
        """The bridge schedule these settings name."""
        return Bridge(self.timesteps, self.m_range[0], self.m_range[1], self.max_var)


@dataclass(frozen=True)
class BBDMSampleSettings:
    """How crops are sampled (``chromosomes.bbdm.sample``): reverse ``steps``, ``eta`` (0 =
    deterministic), batch size, at most ``max_samples`` crops (None = all), zero outside
    the chromosome (``mask_outside``), ``torch.compile`` the UNet (``compile``)."""

    steps: int = setting_default(f"{_BLOCK}.sample.steps")
    eta: float = setting_default(f"{_BLOCK}.sample.eta")
    batch_size: int = setting_default(f"{_BLOCK}.sample.batch_size")
    max_samples: int | None = setting_default(f"{_BLOCK}.sample.max_samples")
    mask_outside: bool = setting_default(f"{_BLOCK}.sample.mask_outside")
    compile: bool = setting_default(f"{_BLOCK}.sample.compile")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> BBDMSampleSettings:
        """The settings of a ``chromosomes.bbdm.sample`` block (every key given)."""
        return typed_settings(cls, block, f"{_BLOCK}.sample")


def _full_scale(stack: str | Path, images: np.ndarray) -> float:
    _, meta = read_stack(stack)
    if "bit_depth" in meta:
        return float((1 << int(meta["bit_depth"])) - 1)
    return float(np.iinfo(images.dtype).max) if images.dtype.kind in "ui" else 1.0


def load_paired(
    stack: str | Path, table: str | Path, label: str | None = "aberration"
) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame, dict[str, Any]]:
    """(targets, conditions) in [-1, 1] from a crop set, rows with ``label`` only.

    The target is the whole crop (DAPI + paint channels); the condition is its DAPI
    channel repeated to the same channel count, so both halves of a pair share one shape.
    """
    images, frame = read_patch_set(stack, table)
    _, meta = read_stack(stack)
    names = list(meta.get("channel_names", []))
    if images.ndim != 4:
        raise InputError(str(stack), f"expected an N x C x H x W crop stack, got {images.shape}")
    if "dapi" not in names:
        raise InputError(str(stack), f"no 'dapi' channel to condition on (channels {names})")
    if label is not None:
        if "label" not in frame:
            raise InputError(str(table), "no 'label' column: the crops carry no annotation")
        keep = (frame["label"] == label).to_numpy()
        if not keep.any():
            raise InputError(
                str(table), f"no '{label}' crops to train on (empty class)", item="label"
            )
        images, frame = images[keep], frame[keep].reset_index(drop=True)
    scale = _full_scale(stack, images)
    target = torch.from_numpy(images.astype(np.float32) / scale) * 2 - 1
    dapi = target[:, names.index("dapi") : names.index("dapi") + 1]
    condition = dapi.expand(-1, target.shape[1], -1, -1).contiguous()
    info = {"channel_names": names, "full_scale": scale, "dtype": str(images.dtype)}
    return target, condition, frame, info


def conditions_from(
    stack: str | Path, table: str | Path, channels: Sequence[str], size: Sequence[int]
) -> tuple[torch.Tensor, pd.DataFrame, float]:
    """DAPI conditions in [-1, 1] for sampling, checked against the model's crops."""
    images, frame = read_patch_set(stack, table)
    _, meta = read_stack(stack)
    names = list(meta.get("channel_names", []))
    if "dapi" not in names:
        raise InputError(str(stack), f"no 'dapi' channel to condition on (channels {names})")
    if images.ndim != 4 or tuple(images.shape[-2:]) != tuple(size):
        raise InputError(
            str(stack),
            f"crop shape {tuple(images.shape[-2:])} does not match the model's {tuple(size)}",
        )
    scale = _full_scale(stack, images)
    dapi = images[:, names.index("dapi")].astype(np.float32) / scale * 2 - 1
    condition = torch.from_numpy(dapi)[:, None].expand(-1, len(channels), -1, -1).contiguous()
    return condition, frame, scale


def unet_spec(net: UNetSettings, channels: int) -> dict[str, Any]:
    """Build spec of the BBDM UNet (model kind ``bbdm_unet``) for crops of ``channels``."""
    return {"in_channels": 2 * channels, "out_channels": channels, **settings_as_config(net)}


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def _draw_pairs(
    x0_all: torch.Tensor, y_all: torch.Tensor, batch: int, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of (target, condition) pairs, mirrored alike when ``flip`` (the same
    mirror for both keeps the pairs aligned)."""
    index = torch.randint(0, len(x0_all), (batch,), generator=generator)
    x0, y = x0_all[index], y_all[index]
    if flip:
        flips = torch.rand(2, generator=generator)
        dims = [d for d, f in zip((-1, -2), flips, strict=True) if f < 0.5]
        if dims:
            x0, y = x0.flip(dims), y.flip(dims)
    return x0, y


def train_bbdm(
    stack: str | Path,
    table: str | Path,
    settings: BBDMSettings,
    seed: int,
    model_path: str | Path,
    history_path: str | Path,
    checkpoint_path: str | Path,
    device: str = default("device"),
    threads: int = 1,
) -> None:
    """Train the BBDM on the aberration crops of a crop set (paired DAPI -> painted).

    Adam, ReduceLROnPlateau on the step loss, EMA of the weights (decay every ``every``
    steps from step ``start``), bf16 autocast on CUDA, a resumable checkpoint every
    ``checkpoint_every`` steps. The model file holds the EMA weights when EMA ran. (Over 80
    lines: the step function is nested, so it shares the objects the checkpoint keeps.)
    """
    dev = setup_device(device, threads, seed)
    x0_all, y_all, _frame, info = load_paired(stack, table)
    size = tuple(x0_all.shape[-2:])
    spec = unet_spec(settings.unet, x0_all.shape[1])
    model = models.build("bbdm_unet", spec)
    if size[0] % model.downsampling or size[1] % model.downsampling:
        raise InputError(
            str(stack), f"crop size {size} is not divisible by the UNet's {model.downsampling}"
        )
    model = model.to(dev)
    ema = copy.deepcopy(model).requires_grad_(False)
    bridge = settings.bridge()
    train = settings.train
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, **settings_as_config(train.plateau)
    )
    generator = torch.Generator(device=dev).manual_seed(seed)
    order_generator = torch.Generator().manual_seed(seed + 1)
    run = TrainingRun(
        checkpoint_path,
        {
            "settings": settings_as_config(settings),
            "seed": seed,
            "n": len(x0_all),
            "shape": list(x0_all.shape),
        },
        [x0_all, y_all],
        {
            "model": model,
            "ema": ema,
            "optimizer": optimizer,
            "scheduler": scheduler,
            "generator": generator,
            "order_generator": order_generator,
        },
        total=train.steps,
        every=train.checkpoint_every,
        unit="step",
    )
    log.info(
        "BBDM: %d aberration crops %s, %d parameters, %d steps from %d",
        len(x0_all),
        tuple(x0_all.shape[1:]),
        sum(p.numel() for p in model.parameters()),
        train.steps,
        run.done,
    )
    ema_settings = train.ema
    use_bf16 = dev.type == "cuda"

    def step(i: int) -> dict[str, float]:
        model.train()
        x0, y = _draw_pairs(x0_all, y_all, train.batch_size, train.flip, order_generator)
        x0, y = x0.to(dev), y.to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = bbdm_loss(model, bridge, x0, y, settings.objective, train.loss, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        scheduler.step(value)
        if i + 1 == ema_settings.start or not ema_settings.enabled:
            ema.load_state_dict(model.state_dict())
        elif i + 1 > ema_settings.start and (i + 1) % ema_settings.every == 0:
            _ema_update(ema, model, ema_settings.decay)
        return {"loss": value}

    run.fit(step, lambda done: {"step": done, "lr": optimizer.param_groups[0]["lr"]}, "bbdm train")
    use_ema = ema_settings.enabled and ema_settings.start <= train.steps
    final = ema if use_ema else model
    metadata = {
        "schedule": {
            k: v
            for k, v in settings_as_config(settings).items()
            if k in ("timesteps", "m_range", "max_var", "objective")
        },
        "size": list(size),
        "seed": seed,
        "steps": train.steps,
        "ema": use_ema,
        "train_crops": len(x0_all),
        **info,
    }
    run.finish(
        history_path, model_path, final, "bbdm_unet", spec, info["channel_names"], metadata,
        columns=["step", "loss", "lr"],
    )  # fmt: skip


def sample_bbdm(
    model_path: str | Path,
    stack: str | Path,
    table: str | Path,
    settings: BBDMSampleSettings,
    seed: int,
    stack_out: str | Path,
    table_out: str | Path,
    generator_name: str = "bbdm",
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """Translate DAPI crops into painted aberration crops, in batches, into a patch set.
    (10 parameters: the rule's inputs, settings, outputs and resources as it passes them.)

    Each output i draws its noise from (seed, source index) by a counter-based hash on the
    sampling device, so a sample does not depend on the batch size or on which other crops
    are sampled, and no step waits for noise made on the host. ``settings.compile``
    runs the UNet through ``torch.compile`` (worth it for long GPU runs; compiling costs
    tens of seconds).
    """
    dev = setup_device(device, threads, seed)
    model, payload = models.load(model_path)
    model = model.to(dev)
    meta = payload["metadata"]
    channels = payload["class_names"]
    schedule = meta["schedule"]
    bridge = Bridge(
        schedule["timesteps"], schedule["m_range"][0], schedule["m_range"][1], schedule["max_var"]
    )
    conditions, frame, scale = conditions_from(stack, table, channels, meta["size"])
    chosen = np.arange(len(frame))
    limit = settings.max_samples
    if limit is not None and limit < len(chosen):
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(chosen), limit, replace=False))
    steps = bridge.step_list(settings.steps)
    out_dtype = np.dtype(meta["dtype"])
    pages = np.zeros((len(chosen), len(channels), *meta["size"]), out_dtype)
    use_bf16 = dev.type == "cuda"
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    network = torch.compile(model) if settings.compile else model

    def predict(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            return network(x, y, t).float()

    batch = settings.batch_size
    seeds = [stage_seed(seed, generator_name, int(i)) for i in frame["index"].to_numpy()[chosen]]
    for start in progress_bar(
        range(0, len(chosen), batch), desc=f"{generator_name} sample", unit="batch"
    ):
        part = chosen[start : start + batch]
        y = conditions[part].to(dev)
        noise = CounterNormal(seeds[start : start + batch], tuple(y.shape[1:]), dev)
        x0 = bridge.sample(predict, y, schedule["objective"], steps, settings.eta, noise)
        values = ((x0.float().cpu().numpy() + 1) / 2 * scale).round()
        if settings.mask_outside:  # crops are zero outside the chromosome: keep it so
            values *= (conditions[part][:, :1] > -1).numpy()
        pages[start : start + len(part)] = np.clip(values, 0, scale).astype(out_dtype)
    source = frame.iloc[chosen].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "index": np.arange(len(chosen)),
            "source_index": source["index"].to_numpy(),
            "sample": source["sample"].to_numpy() if "sample" in source else "",
            "instance": source["instance"].to_numpy() if "instance" in source else 0,
            "generator": generator_name,
            "label": "aberration",
            "is_aberration": True,
            "sample_seed": np.array(seeds, dtype=np.int64),
        }
    )
    with atomic_outputs(stack_out, table_out) as (stack_temp, table_temp):
        write_stack(
            stack_temp, encode_pages(pages, "zlib"), pages.shape, out_dtype, channels, "zlib"
        )
        out.to_parquet(table_temp, index=False)
    log.info(
        "%s: %d samples with %d steps, eta %.2f",
        generator_name,
        len(out),
        len(steps),
        settings.eta,
    )
    return out
