"""Model files: one ``.pt`` with the state dict, the config that built it, class names and
training metadata; :func:`load` rebuilds any model kind from it."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fishline.errors import InputError
from fishline.io import atomic_outputs


def build(kind: str, spec: dict[str, Any]) -> nn.Module:
    """Construct an untrained model of ``kind`` from its build spec."""
    if kind == "fishnet":
        from fishline.nets.fish import FishNet

        return FishNet(spec["classes"], spec.get("in_channels", 3))
    if kind == "bbdm_unet":
        from fishline.nets.unet import UNet

        return UNet(**spec)
    if kind == "cyclegan":
        from fishline.nets.cyclegan import CycleGAN

        return CycleGAN(spec["channels"], spec["filters"], spec["blocks"])
    if kind == "chromnet":
        from fishline.nets.chrom import ChromNet

        return ChromNet(spec["classes"], spec.get("in_channels", 3))
    if kind == "simsearch":
        from fishline.nets.simsearch import SimSearchNet

        return SimSearchNet(
            spec["classes"],
            spec["in_channels"],
            spec.get("backbone", "resnet18"),
            spec.get("projection", 128),
        )
    if kind == "cellpose":
        from fishline.nets.cellpose_ensemble import DEFAULT_WIDTH, CellposeEnsemble, cellpose_net

        # A spec with `members` is an ensemble (any width); without it, one Cellpose 3.1
        # network of the default width, as fishline wrote every Cellpose model before.
        if "members" in spec:
            return CellposeEnsemble(spec["members"], spec["width"], spec["diameter"])
        return cellpose_net(DEFAULT_WIDTH, spec["diameter"])
    raise InputError("model", f"unknown model kind '{kind}'")


def save(
    path: str | Path,
    model: nn.Module,
    kind: str,
    spec: dict[str, Any],
    class_names: list[str],
    metadata: dict[str, Any],
) -> None:
    """Write a model file atomically."""
    payload = {
        "kind": kind,
        "spec": spec,
        "class_names": class_names,
        "metadata": metadata,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_outputs(path) as (temp,):
        torch.save(payload, temp)


def load(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model (in eval mode) and return it with its file's other fields."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for corrupt files
        raise InputError(str(path), f"cannot read model file ({error})") from error
    model = build(payload["kind"], payload["spec"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


def machine() -> dict[str, Any]:
    """The CPU (and whether it has AMX bf16 units), cores and library versions a model was
    trained or measured with, for its metadata and model card."""
    cpu, flags = platform.processor() or platform.machine(), ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = cpuinfo.read_text()
        names = [
            line.split(":", 1)[1].strip() for line in flags.splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "amx": " amx" in flags,
        "cores": os.cpu_count(),
        "torch": str(torch.__version__),
        "cellpose": metadata.version("cellpose"),
        "python": platform.python_version(),
    }
