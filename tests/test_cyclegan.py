"""CycleGAN baseline: networks, history pool, LR schedule, seeded training and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import killed_after_first_checkpoint
from test_bbdm import _crop_set

from fishline.chromosomes.cyclegan import (
    CycleGANSampleSettings,
    CycleGANSettings,
    HistoryPool,
    linear_decay,
    sample_cyclegan,
    train_cyclegan,
)
from fishline.errors import InputError
from fishline.io import read_patch_set
from fishline.nets.cyclegan import CycleGAN, PatchDiscriminator
from fishline.schema import default


def _train(target, source, seed, name, tmp_path, checkpoint="c.pt"):
    train_cyclegan(
        *target, *source, SETTINGS, seed, tmp_path / f"{name}.pt",
        tmp_path / f"{name}.parquet", tmp_path / checkpoint, "cpu",
    )  # fmt: skip


SETTINGS = CycleGANSettings(
    filters=4,
    blocks=1,
    disc_filters=4,
    steps_constant=2,
    steps_decay=2,
    batch_size=2,
    pool=3,
    checkpoint_every=2,
)


def test_settings_from_the_config_block() -> None:
    """The schema's block gives the defaults (``enabled`` is the workflow's, ``sample`` the
    sampler's); a misspelled key is named."""
    block = default("chromosomes.cyclegan")
    assert CycleGANSettings.from_config(block) == CycleGANSettings()
    assert CycleGANSampleSettings.from_config(block["sample"]) == CycleGANSampleSettings()
    with pytest.raises(InputError, match=r"unknown key\(s\) \['pol'\]"):
        CycleGANSettings.from_config({**block, "pol": 3})


def test_networks_keep_shape_and_patchgan_scores_patches() -> None:
    net = CycleGAN(3, 8, 2)
    x = torch.zeros(2, 3, 64, 64)
    assert net(x).shape == x.shape and net.g_ba(x).shape == x.shape
    assert PatchDiscriminator(3, 8)(x).shape == (2, 1, 6, 6)  # 70x70 receptive field


def test_history_pool_and_linear_decay() -> None:
    pool = HistoryPool(2, 0)
    first = pool.query(torch.arange(2.0).view(2, 1))
    assert first.flatten().tolist() == [0.0, 1.0]  # filling: the new images pass through
    later = pool.query(torch.full((50, 1), 9.0))
    assert int((later != 9).sum()) == 2  # each stored image comes out once, then is replaced
    assert all(float(image) == 9 for image in pool.images)
    pool = HistoryPool(50, 1)
    pool.query(torch.zeros(50, 1))
    new = torch.arange(1.0, 1001.0).view(-1, 1)
    assert 0.45 < float((pool.query(new) != new).float().mean()) < 0.55  # half are old fakes
    assert [linear_decay(s, 2, 3) for s in (0, 2, 3, 5)] == [1.0, 1.0, 0.75, 0.25]


def test_train_resume_and_sample(tmp_path: Path, monkeypatch) -> None:
    target = _crop_set(tmp_path, "train", ["aberration", "normal"] * 3, size=32)
    source = _crop_set(tmp_path, "unannotated", ["unmatched"] * 5, size=32, seed=3)
    _train(target, source, 4, "m", tmp_path)

    killed_after_first_checkpoint(
        monkeypatch, lambda: _train(target, source, 4, "r", tmp_path, "c2.pt")
    )
    _train(target, source, 4, "r", tmp_path, "c2.pt")
    a = torch.load(tmp_path / "m.pt", weights_only=False)
    b = torch.load(tmp_path / "r.pt", weights_only=False)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["kind"] == "cyclegan" and a["metadata"]["steps"] == 4
    sample_cyclegan(
        tmp_path / "m.pt", *source, CycleGANSampleSettings(), 1, tmp_path / "s.tif",
        tmp_path / "s.parquet", "cpu",
    )  # fmt: skip
    images, table = read_patch_set(tmp_path / "s.tif", tmp_path / "s.parquet")
    assert images.shape == (5, 3, 32, 32) and (table["generator"] == "cyclegan").all()
    assert len(np.unique(images)) > 2  # a translation, not a blank


def test_empty_target_class_is_named(tmp_path: Path) -> None:
    target = _crop_set(tmp_path, "train", ["normal"] * 3)
    source = _crop_set(tmp_path, "unannotated", ["unmatched"] * 3)
    with pytest.raises(InputError, match="no 'aberration' crops"):
        _train(target, source, 1, "m", tmp_path)
    target = _crop_set(tmp_path, "small", ["aberration"] * 3)
    with pytest.raises(InputError, match=r"small.tif: crops of 16 px are too small"):
        _train(target, source, 1, "m", tmp_path)
