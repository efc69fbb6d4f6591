"""Brownian Bridge Diffusion Model (BBDM, Li et al. 2023): DAPI crop -> painted crop.

The bridge runs from the target x0 (a painted chromosome crop, all channels) at t = 0 to
the condition y (its DAPI channel repeated to the same channel count) at t = T:

    x_t = (1 - m_t) x0 + m_t y + sqrt(delta_t) eps,   delta_t = 2 s (m_t - m_t^2),

with m_t linear from ``m_min`` to ``m_max`` over T steps. The network sees
concat(x_t, y) and t and predicts, by objective, ``grad`` = x_t - x0 (the default),
``noise`` = eps or ``ysubx`` = y - x0. Sampling starts at x_T = y and walks a step list
with the DDIM-style update of the notes; with eta = 1 one step is the exact posterior
q(x_s | x_t, x0_hat), and eta scales the noise while keeping the marginal variance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fishline import models
from fishline.config import default
from fishline.errors import InputError
from fishline.io import atomic_outputs, encode_pages, read_patch_set, read_stack, write_stack
from fishline.logging import get_logger, progress_bar
from fishline.nets.counter_noise import CounterNormal
from fishline.seeds import stage_seed
from fishline.train.loop import (
    data_hash,
    finish_training,
    load_checkpoint,
    save_checkpoint,
    setup_device,
    spec_hash,
)

log = get_logger("bbdm")
OBJECTIVES = ("grad", "noise", "ysubx")


@dataclass(frozen=True)
class Bridge:
    """The Brownian-bridge schedule: m_t and delta_t for t = 0 .. T-1 (float64)."""

    timesteps: int = default("chromosomes.bbdm.timesteps")
    m_min: float = default("chromosomes.bbdm.m_range")[0]
    m_max: float = default("chromosomes.bbdm.m_range")[1]
    max_var: float = default("chromosomes.bbdm.max_var")

    @property
    def m(self) -> torch.Tensor:
        """m_t, linear from m_min to m_max."""
        return torch.linspace(self.m_min, self.m_max, self.timesteps, dtype=torch.float64)

    @property
    def delta(self) -> torch.Tensor:
        """Bridge variance delta_t = 2 s (m_t - m_t^2)."""
        m = self.m
        return 2.0 * self.max_var * (m - m * m)

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def q_sample(
        self, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Draw x_t from the forward marginal q(x_t | x0, y)."""
        m = self._at(self.m, t, x0)
        sd = self._at(self.delta.sqrt(), t, x0)
        return (1 - m) * x0 + m * y + sd * noise

    def target(
        self,
        objective: str,
        x0: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """What the network learns to predict under ``objective``."""
        if objective == "grad":
            m = self._at(self.m, t, x0)
            sd = self._at(self.delta.sqrt(), t, x0)
            return m * (y - x0) + sd * noise
        if objective == "noise":
            return noise
        if objective == "ysubx":
            return y - x0
        raise InputError("bbdm.objective", f"unknown objective '{objective}'; use {OBJECTIVES}")

    def x0_from(
        self,
        objective: str,
        x_t: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        prediction: torch.Tensor,
    ) -> torch.Tensor:
        """The estimate of x0 implied by a prediction at time t."""
        if objective == "grad":
            return x_t - prediction
        if objective == "noise":
            m = self._at(self.m, t, x_t)
            sd = self._at(self.delta.sqrt(), t, x_t)
            return (x_t - m * y - sd * prediction) / (1 - m)
        if objective == "ysubx":
            return y - prediction
        raise InputError("bbdm.objective", f"unknown objective '{objective}'; use {OBJECTIVES}")

    def step_list(self, steps: int) -> list[int]:
        """``steps`` time indices from T-1 down to 0, linearly spaced (the last is 0)."""
        if steps < 2:
            raise InputError("bbdm.sample.steps", "needs at least 2 sampling steps")
        if steps > self.timesteps:
            raise InputError("bbdm.sample.steps", f"more than the {self.timesteps} time steps")
        return [int(v) for v in np.round(np.linspace(self.timesteps - 1, 0, steps))]

    def reverse_step(
        self,
        x_t: torch.Tensor,
        y: torch.Tensor,
        x0_hat: torch.Tensor,
        t: int,
        s: int,
        eta: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Move from time t to an earlier time s given the current x0 estimate.

        sigma^2 = (delta_t - delta_s (1-m_t)^2/(1-m_s)^2) delta_s / delta_t is the exact
        posterior variance; eta^2 sigma^2 of it is drawn fresh and the rest carried along
        the current noise direction, so x_s keeps the marginal variance delta_s.
        """
        m, delta = self.m, self.delta
        m_t, m_s, d_t, d_s = float(m[t]), float(m[s]), float(delta[t]), float(delta[s])
        sigma2 = (d_t - d_s * (1 - m_t) ** 2 / (1 - m_s) ** 2) * d_s / d_t
        sigma2 = max(sigma2, 0.0)
        carried = max(d_s - eta**2 * sigma2, 0.0) / d_t
        direction = x_t - (1 - m_t) * x0_hat - m_t * y
        return (1 - m_s) * x0_hat + m_s * y + carried**0.5 * direction + eta * sigma2**0.5 * noise

    def sample(
        self,
        predict: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        y: torch.Tensor,
        objective: str,
        steps: Sequence[int],
        eta: float,
        noise: Callable[[], torch.Tensor],
        clip: bool = True,
    ) -> torch.Tensor:
        """Run the reverse bridge from x_T = y over ``steps`` (descending, last = end).

        ``predict(x_t, y, t)`` is the network; ``noise()`` returns a fresh N(0, 1) batch
        (per-sample seeded by the caller). At the last step x0_hat itself is returned.
        """
        x = y.clone()
        for position, t in enumerate(steps):
            t_batch = torch.full((len(y),), t, dtype=torch.long, device=y.device)
            x0_hat = self.x0_from(objective, x, y, t_batch, predict(x, y, t_batch).to(x.dtype))
            if clip:
                x0_hat = x0_hat.clamp(-1, 1)
            if position == len(steps) - 1:
                return x0_hat
            x = self.reverse_step(x, y, x0_hat, t, steps[position + 1], eta, noise())
        return x


def bridge_from(settings: dict[str, Any]) -> Bridge:
    """The schedule named by a ``chromosomes.bbdm`` config block."""
    return Bridge(
        settings["timesteps"], settings["m_range"][0], settings["m_range"][1], settings["max_var"]
    )


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


def unet_spec(settings: dict[str, Any], channels: int) -> dict[str, Any]:
    """Build spec of the BBDM UNet (model kind ``bbdm_unet``)."""
    net = settings["unet"]
    return {
        "in_channels": 2 * channels,
        "out_channels": channels,
        "base": net["base"],
        "multipliers": list(net["multipliers"]),
        "blocks": net["blocks"],
        "attention": list(net["attention"]),
        "middle_attention": net["middle_attention"],
        "dropout": net["dropout"],
    }


def bbdm_loss(
    model: torch.nn.Module,
    bridge: Bridge,
    x0: torch.Tensor,
    y: torch.Tensor,
    objective: str,
    loss: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """One training loss: t uniform, x_t from the forward marginal, L1 or L2 to target."""
    t = torch.randint(0, bridge.timesteps, (len(x0),), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    x_t = bridge.q_sample(x0, y, t, noise)
    prediction = model(x_t, y, t).float()
    target = bridge.target(objective, x0, y, t, noise)
    if loss == "l1":
        return (prediction - target).abs().mean()
    return F.mse_loss(prediction, target)


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def train_bbdm(
    stack: str | Path,
    table: str | Path,
    settings: dict[str, Any],
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
    ``checkpoint_every`` steps. The model file holds the EMA weights when EMA ran.
    """
    dev = setup_device(device, threads, seed)
    x0_all, y_all, _frame, info = load_paired(stack, table)
    size = tuple(x0_all.shape[-2:])
    spec = unet_spec(settings, x0_all.shape[1])
    model = models.build("bbdm_unet", spec)
    if size[0] % model.downsampling or size[1] % model.downsampling:
        raise InputError(
            str(stack), f"crop size {size} is not divisible by the UNet's {model.downsampling}"
        )
    model = model.to(dev)
    ema = copy.deepcopy(model).requires_grad_(False)
    bridge = bridge_from(settings)
    train = settings["train"]
    optimizer = torch.optim.Adam(model.parameters(), lr=train["lr"])
    plateau = train["plateau"]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        factor=plateau["factor"],
        patience=plateau["patience"],
        cooldown=plateau["cooldown"],
        threshold=plateau["threshold"],
        min_lr=plateau["min_lr"],
    )
    fingerprint = spec_hash(
        {"settings": settings, "seed": seed, "n": len(x0_all), "shape": list(x0_all.shape)}
    )
    generator = torch.Generator(device=dev).manual_seed(seed)
    order_generator = torch.Generator().manual_seed(seed + 1)
    history: list[dict[str, Any]] = []
    start = 0
    checkpoint_path = Path(checkpoint_path)
    data = data_hash(x0_all, y_all)
    state = load_checkpoint(checkpoint_path, fingerprint, data)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        order_generator.set_state(state["order_generator"])
        history, start = state["history"], state["epoch"]
    log.info(
        "BBDM: %d aberration crops %s, %d parameters, %d steps from %d",
        len(x0_all),
        tuple(x0_all.shape[1:]),
        sum(p.numel() for p in model.parameters()),
        train["steps"],
        start,
    )
    ema_settings = train["ema"]
    use_bf16 = dev.type == "cuda"
    running, count = 0.0, 0
    progress = progress_bar(range(start, train["steps"]), desc="bbdm train", unit="step")
    for step in progress:
        model.train()
        index = torch.randint(0, len(x0_all), (train["batch_size"],), generator=order_generator)
        x0, y = x0_all[index], y_all[index]
        if train["flip"]:  # the same mirror for target and condition keeps pairs aligned
            flips = torch.rand(2, generator=order_generator)
            dims = [d for d, f in zip((-1, -2), flips, strict=True) if f < 0.5]
            if dims:
                x0, y = x0.flip(dims), y.flip(dims)
        x0, y = x0.to(dev), y.to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = bbdm_loss(model, bridge, x0, y, settings["objective"], train["loss"], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        scheduler.step(value)
        if step + 1 == ema_settings["start"] or not ema_settings["enabled"]:
            ema.load_state_dict(model.state_dict())
        elif step + 1 > ema_settings["start"] and (step + 1) % ema_settings["every"] == 0:
            _ema_update(ema, model, ema_settings["decay"])
        running, count = running + value, count + 1
        progress.set_postfix(loss=f"{value:.4f}")
        done = step + 1
        if done % train["checkpoint_every"] == 0 or done == train["steps"]:
            history.append(
                {"step": done, "loss": running / count, "lr": optimizer.param_groups[0]["lr"]}
            )
            log.info("step %d: loss %.4f", done, running / count)
            running, count = 0.0, 0
            save_checkpoint(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "data": data,
                    "epoch": done,
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "order_generator": order_generator.get_state(),
                    "history": history,
                },
            )
    use_ema = ema_settings["enabled"] and ema_settings["start"] <= train["steps"]
    final = ema if use_ema else model
    metadata = {
        "schedule": {k: settings[k] for k in ("timesteps", "m_range", "max_var", "objective")},
        "size": list(size),
        "seed": seed,
        "steps": train["steps"],
        "ema": use_ema,
        "train_crops": len(x0_all),
        **info,
    }
    finish_training(
        pd.DataFrame(history, columns=["step", "loss", "lr"]), history_path, model_path, final,
        "bbdm_unet", spec, info["channel_names"], metadata, checkpoint_path,
    )  # fmt: skip


def sample_bbdm(
    model_path: str | Path,
    stack: str | Path,
    table: str | Path,
    settings: dict[str, Any],
    seed: int,
    stack_out: str | Path,
    table_out: str | Path,
    generator_name: str = "bbdm",
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """Translate DAPI crops into painted aberration crops, in batches, into a patch set.

    Each output i draws its noise from (seed, source index) by a counter-based hash on the
    sampling device, so a sample does not depend on the batch size or on which other crops
    are sampled, and no step waits for noise made on the host. ``settings["compile"]``
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
    limit = settings["max_samples"]
    if limit is not None and limit < len(chosen):
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(chosen), limit, replace=False))
    steps = bridge.step_list(settings["steps"])
    out_dtype = np.dtype(meta["dtype"])
    pages = np.zeros((len(chosen), len(channels), *meta["size"]), out_dtype)
    use_bf16 = dev.type == "cuda"
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    network = torch.compile(model) if settings["compile"] else model

    def predict(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            return network(x, y, t).float()

    batch = settings["batch_size"]
    seeds = [stage_seed(seed, generator_name, int(i)) for i in frame["index"].to_numpy()[chosen]]
    for start in progress_bar(
        range(0, len(chosen), batch), desc=f"{generator_name} sample", unit="batch"
    ):
        part = chosen[start : start + batch]
        y = conditions[part].to(dev)
        noise = CounterNormal(seeds[start : start + batch], tuple(y.shape[1:]), dev)
        x0 = bridge.sample(predict, y, schedule["objective"], steps, settings["eta"], noise)
        values = ((x0.float().cpu().numpy() + 1) / 2 * scale).round()
        if settings["mask_outside"]:  # crops are zero outside the chromosome: keep it so
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
        settings["eta"],
    )
    return out
