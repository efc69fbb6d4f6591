"""BBDM: the bridge's mathematics on random tensors, the UNet, training and sampling."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from conftest import killed_after_first_checkpoint

from fishline import models
from fishline.chromosomes.bbdm import (
    BBDMSampleSettings,
    BBDMSettings,
    BBDMTrainSettings,
    EMASettings,
    PlateauSettings,
    UNetSettings,
    load_paired,
    sample_bbdm,
    train_bbdm,
)
from fishline.chromosomes.bridge import Bridge
from fishline.errors import InputError
from fishline.io import encode_pages, read_patch_set, write_stack
from fishline.nets.counter_noise import CounterNormal, hash32
from fishline.nets.unet import UNet
from fishline.schema import default, settings_as_config

BRIDGE = Bridge(1000, 0.001, 0.999, 1.0)


def test_schedule_endpoints_and_variance() -> None:
    m, delta = BRIDGE.m, BRIDGE.delta
    assert float(m[0]) == pytest.approx(0.001) and float(m[-1]) == pytest.approx(0.999)
    assert torch.allclose(delta, 2 * (m - m**2))
    assert int(delta.argmax()) in (499, 500)  # widest in the middle of the bridge


@pytest.mark.parametrize("t", [10, 500, 990])
def test_forward_marginal_mean_and_variance(t: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 2, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1
    y = torch.rand(1, 2, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1
    n = 40000
    noise = torch.randn(n, 2, 4, 4, generator=gen, dtype=torch.float64)
    steps = torch.full((n,), t)
    x_t = BRIDGE.q_sample(x0.expand(n, -1, -1, -1), y.expand(n, -1, -1, -1), steps, noise)
    m, delta = float(BRIDGE.m[t]), float(BRIDGE.delta[t])
    expected = (1 - m) * x0 + m * y
    stderr = math.sqrt(delta / n)
    assert (x_t.mean(0) - expected[0]).abs().max() < 5 * stderr
    assert x_t.var(0).mean().item() == pytest.approx(delta, rel=0.02)


@pytest.mark.parametrize("t", [1, 2, 400, 999])
def test_reverse_step_to_previous_time_is_the_exact_posterior(t: int) -> None:
    """With s = t-1 and eta = 1 the update is q(x_s | x_t, x0), derived independently here
    by conditioning the joint Gaussian of (x_s, x_t) given x0 and y."""
    s = t - 1
    gen = torch.Generator().manual_seed(t)
    x0, y, x_t = (torch.randn(3, 5, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    m, delta = BRIDGE.m.numpy(), BRIDGE.delta.numpy()
    a = (1 - m[t]) / (1 - m[s])  # x_t = a x_s + (m_t - a m_s) y + N(0, delta_t|s)
    delta_ts = delta[t] - a**2 * delta[s]
    cov = np.array([[delta[s], a * delta[s]], [a * delta[s], a**2 * delta[s] + delta_ts]])
    assert cov[1, 1] == pytest.approx(delta[t])
    mu_s = (1 - m[s]) * x0 + m[s] * y
    mu_t = (1 - m[t]) * x0 + m[t] * y
    post_mean = mu_s + cov[0, 1] / cov[1, 1] * (x_t - mu_t)
    post_var = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
    zero = BRIDGE.reverse_step(x_t, y, x0, t, s, 1.0, torch.zeros_like(x0))
    assert torch.allclose(zero, post_mean, atol=1e-10)
    z = torch.randn(3, 5, 5, generator=gen, dtype=torch.float64)
    drawn = BRIDGE.reverse_step(x_t, y, x0, t, s, 1.0, z)
    assert torch.allclose(drawn - zero, math.sqrt(post_var) * z, atol=1e-10)


def test_eta_keeps_the_marginal_variance() -> None:
    """Any eta: x_s from x_t ~ q(x_t | x0) has the marginal variance delta_s."""
    t, s, n = 800, 600, 50000
    gen = torch.Generator().manual_seed(3)
    x0 = torch.zeros(n, 1, 1, 1, dtype=torch.float64)
    y = torch.ones(n, 1, 1, 1, dtype=torch.float64)
    x_t = BRIDGE.q_sample(
        x0, y, torch.full((n,), t), torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    )
    for eta in (0.0, 0.5, 1.0):
        z = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        x_s = BRIDGE.reverse_step(x_t, y, x0, t, s, eta, z)
        assert x_s.var().item() == pytest.approx(float(BRIDGE.delta[s]), rel=0.03), eta
        assert x_s.mean().item() == pytest.approx(float(BRIDGE.m[s]), abs=0.01)


@pytest.mark.parametrize("objective", ["grad", "noise", "ysubx"])
def test_sampling_with_a_perfect_predictor_returns_x0(objective: str) -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    y = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1

    def oracle(x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m = BRIDGE.m[t].view(-1, 1, 1, 1)
        sd = BRIDGE.delta.sqrt()[t].view(-1, 1, 1, 1)
        noise = (x_t - (1 - m) * x0 - m * cond) / sd
        return BRIDGE.target(objective, x0, cond, t, noise)

    def noise() -> torch.Tensor:
        return torch.randn(x0.shape, generator=gen, dtype=torch.float64)

    for eta in (0.0, 1.0):
        out = BRIDGE.sample(oracle, y, objective, BRIDGE.step_list(7), eta, noise, clip=False)
        assert torch.allclose(out, x0, atol=1e-8)
    # a wrong predictor does not: the test can fail
    wrong = BRIDGE.sample(lambda x, c, t: torch.zeros_like(x), y, objective, [999, 0], 1.0, noise)
    assert not torch.allclose(wrong, x0, atol=1e-2)


def test_step_list() -> None:
    steps = BRIDGE.step_list(200)
    assert steps[0] == 999 and steps[-1] == 0 and len(set(steps)) == 200
    assert all(a > b for a, b in itertools.pairwise(steps))
    with pytest.raises(InputError, match="at least 2"):
        BRIDGE.step_list(1)


def test_unet_shapes_and_attention() -> None:
    net = UNet(
        6, 3, base=8, multipliers=(1, 2), blocks=1, attention=(False, True), dropout=0.0,
        middle_attention=True,
    )  # fmt: skip
    out = net(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16), torch.tensor([0, 999]))
    assert out.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="not divisible"):
        net(torch.zeros(1, 3, 15, 16), torch.zeros(1, 3, 15, 16), torch.tensor([3]))


def _crop_set(folder: Path, name: str, labels: list[str], size: int = 16, seed: int = 0):
    """A crop set: DAPI a bar, red = DAPI on aberrations' upper half (a learnable map)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    stack = np.zeros((n, 3, size, size), np.uint8)
    for i in range(n):
        width = rng.integers(2, 5)
        left = size // 2 - width
        stack[i, 0, 2:-2, left : left + 2 * width] = rng.integers(120, 200)
        stack[i, 1, 2 : size // 2] = stack[i, 0, 2 : size // 2]
    table = pd.DataFrame(
        {"index": np.arange(n), "sample": "s0", "instance": np.arange(1, n + 1), "label": labels}
    )
    tif, parquet = folder / f"{name}.tif", folder / f"{name}.parquet"
    write_stack(
        tif, encode_pages(stack, "zlib"), stack.shape, np.uint8, ("dapi", "red", "green"), "zlib"
    )
    table.to_parquet(parquet, index=False)
    return tif, parquet


SETTINGS = BBDMSettings(
    unet=UNetSettings(base=8, multipliers=(1, 2), attention=(False, False)),
    train=BBDMTrainSettings(
        steps=6,
        batch_size=4,
        lr=1e-3,
        checkpoint_every=3,
        ema=EMASettings(decay=0.9, start=2),
        plateau=PlateauSettings(patience=100, cooldown=0, min_lr=1e-6),
    ),
)
SAMPLE = BBDMSampleSettings(steps=3, batch_size=3)


def test_settings_from_the_config_block() -> None:
    """The schema's block gives the defaults (its ``sample`` block is the sampler's); the
    bridge they name; a misspelled nested key is named with its place."""
    block = default("chromosomes.bbdm")
    assert BBDMSettings.from_config(block) == BBDMSettings()
    assert BBDMSampleSettings.from_config(block["sample"]) == BBDMSampleSettings()
    assert settings_as_config(BBDMSettings())["unet"] == block["unet"]
    bridge = BBDMSettings().bridge()
    assert (bridge.timesteps, float(bridge.m[0])) == (1000, pytest.approx(0.001))
    bad = {**block, "train": {**block["train"], "ema": {**block["train"]["ema"], "decy": 1}}}
    with pytest.raises(InputError, match=r"\[train\.ema\].*unknown key\(s\) \['decy'\]"):
        BBDMSettings.from_config(bad)


def test_train_and_sample_are_seeded(tmp_path: Path) -> None:
    tif, parquet = _crop_set(tmp_path, "train", ["aberration", "normal"] * 4)
    cond_tif, cond_parquet = _crop_set(tmp_path, "unannotated", ["unmatched"] * 5, seed=2)
    model_path = tmp_path / "m.pt"
    train_bbdm(
        tif, parquet, SETTINGS, 7, model_path, tmp_path / "h.parquet", tmp_path / "c.pt", "cpu"
    )
    history = pd.read_parquet(tmp_path / "h.parquet")
    assert list(history["step"]) == [3, 6] and np.isfinite(history["loss"]).all()
    _, payload = models.load(model_path)
    assert payload["metadata"]["train_crops"] == 4 and payload["metadata"]["ema"]
    assert payload["class_names"] == ["dapi", "red", "green"]
    outs = []
    for batch in (3, 5, 5):
        settings = replace(SAMPLE, batch_size=batch)
        out_tif, out_parquet = tmp_path / f"s{len(outs)}.tif", tmp_path / f"s{len(outs)}.parquet"
        sample_bbdm(
            model_path, cond_tif, cond_parquet, settings, 11, out_tif, out_parquet, device="cpu"
        )
        outs.append(read_patch_set(out_tif, out_parquet))
    # per-sample seeds: the batch size does not change any sample; reruns are identical
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[1][0], outs[2][0])
    images, table = outs[0]
    assert images.shape == (5, 3, 16, 16) and images.dtype == np.uint8
    assert len({images[i].tobytes() for i in range(5)}) == 5
    dapi = read_patch_set(cond_tif, cond_parquet)[0][:, :1]
    assert not images[np.broadcast_to(dapi == 0, images.shape)].any()  # masked outside
    assert images[np.broadcast_to(dapi > 0, images.shape)].any()
    assert (table["label"] == "aberration").all() and list(table["source_index"]) == list(range(5))
    assert len(set(table["sample_seed"])) == 5
    # the compiled UNet samples the same crops (float rounding may move a pixel by one level)
    settings = replace(SAMPLE, batch_size=5, compile=True)
    out_tif, out_parquet = tmp_path / "compiled.tif", tmp_path / "compiled.parquet"
    sample_bbdm(
        model_path, cond_tif, cond_parquet, settings, 11, out_tif, out_parquet, device="cpu"
    )
    compiled = read_patch_set(out_tif, out_parquet)[0].astype(int)
    assert np.abs(compiled - images).max() <= 1 and (compiled == images).mean() > 0.99


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path: Path, monkeypatch) -> None:
    tif, parquet = _crop_set(tmp_path, "train", ["aberration"] * 6)
    full = tmp_path / "full.pt"
    train_bbdm(tif, parquet, SETTINGS, 3, full, tmp_path / "h.parquet", tmp_path / "c.pt", "cpu")
    assert not (tmp_path / "c.pt").exists()  # a finished run removes its checkpoint

    checkpoint = tmp_path / "c2.pt"
    killed_after_first_checkpoint(
        monkeypatch,
        lambda: train_bbdm(
            tif, parquet, SETTINGS, 3, tmp_path / "r.pt", tmp_path / "hr.parquet", checkpoint, "cpu"
        ),
    )
    assert torch.load(checkpoint, weights_only=False)["done"] == 3
    train_bbdm(
        tif, parquet, SETTINGS, 3, tmp_path / "r.pt", tmp_path / "hr.parquet", checkpoint, "cpu"
    )
    a = torch.load(full, weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "r.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert pd.read_parquet(tmp_path / "hr.parquet").equals(pd.read_parquet(tmp_path / "h.parquet"))


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    tif, parquet = _crop_set(tmp_path, "train", ["normal"] * 3)
    with pytest.raises(InputError, match=r"train.parquet \[label\]: no 'aberration' crops"):
        load_paired(tif, parquet)
    tif2, parquet2 = _crop_set(tmp_path, "ok", ["aberration"] * 3)
    train_bbdm(
        tif2,
        parquet2,
        SETTINGS,
        1,
        tmp_path / "m.pt",
        tmp_path / "h.parquet",
        tmp_path / "c.pt",
        "cpu",
    )
    big_tif, big_parquet = _crop_set(tmp_path, "big", ["unmatched"] * 2, size=32)
    with pytest.raises(InputError, match=r"big.tif: crop shape \(32, 32\) does not match"):
        sample_bbdm(
            tmp_path / "m.pt",
            big_tif,
            big_parquet,
            SAMPLE,
            1,
            tmp_path / "o.tif",
            tmp_path / "o.parquet",
            device="cpu",
        )
    assert not (tmp_path / "o.tif").exists()
    odd_tif, odd_parquet = _crop_set(tmp_path, "odd", ["aberration"] * 2, size=18)
    bad = replace(
        SETTINGS, unet=replace(SETTINGS.unet, multipliers=(1, 2, 2), attention=(False,) * 3)
    )
    with pytest.raises(InputError, match="not divisible"):
        train_bbdm(
            odd_tif,
            odd_parquet,
            bad,
            1,
            tmp_path / "m2.pt",
            tmp_path / "h2.parquet",
            tmp_path / "c2.pt",
            "cpu",
        )


def test_hash32_matches_integer_arithmetic_and_is_a_bijection() -> None:
    def reference(x: int) -> int:  # lowbias32 in Python integers
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    values = [0, 1, 2, 12345, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF]
    assert hash32(torch.tensor(values)).tolist() == [reference(v) for v in values]
    assert reference(1) != 1 and reference(0) == 0
    block = hash32(torch.arange(1 << 16) * 65521)
    assert len(torch.unique(block)) == 1 << 16 and int(block.max()) < 1 << 32


def test_counter_noise_is_per_sample_normal_and_batch_independent() -> None:
    cpu = torch.device("cpu")
    together = CounterNormal([5, 6, 7], (2, 3, 4), cpu)
    alone = CounterNormal([6], (2, 3, 4), cpu)
    first, second = together(), together()
    assert first.shape == (3, 2, 3, 4) and first.dtype == torch.float32
    assert torch.equal(first[1:2], alone()) and torch.equal(second[1:2], alone())
    assert not torch.equal(first[0], first[1]) and not torch.equal(first, second)
    assert torch.equal(CounterNormal([5, 6, 7], (2, 3, 4), cpu)(), first)  # reproducible
    draws = CounterNormal(range(400), (3, 17, 17), cpu)()  # odd size: one Box-Muller pair cut
    values = draws.flatten().double().numpy()
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01
    assert scipy.stats.kstest(values, "norm").pvalue > 0.01
    per_sample = np.corrcoef(draws.reshape(400, -1)[:50].numpy())
    assert np.abs(per_sample - np.eye(50)).max() < 0.15  # 867 values each: |r| ~ 0.034
