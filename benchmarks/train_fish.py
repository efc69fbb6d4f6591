"""FISH classifier training speed: full data pipeline vs preloaded tensors, CPU (and GPU).

"pipeline" = the training step as run: index the prepared set (scaled and resized once,
float16; kept on a CUDA device when it fits, as training does), move the batch to the
device, make two augmented views there, joint-loss step;
"preloaded" = the same step on views made beforehand. The
ratio says whether loading and augmentation slow training (goal: <= 1.1). On CUDA the
bf16 autocast step is compared with fp32, and so it is on a CPU with native bf16 units
(AMX), where training uses bf16 by default. Usage:
    python benchmarks/train_fish.py [--steps 10] [--batch 64] [--size 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rows import Row, add_json_argument, write_rows

from fishline.fish.classifier import prepare_set, stage_on_device, to_device
from fishline.nets.fish import FishNet
from fishline.paint import FishPaintSettings, render_patches
from fishline.paint.fish import assign_conditions
from fishline.paint.optics import quantise
from fishline.schema import validate
from fishline.train.augment import augment
from fishline.train.loop import cpu_has_bf16_units
from fishline.train.losses import joint_loss


def _step(model, optimizer, first, second, labels, bf16: bool) -> None:
    with torch.autocast(first.device.type, dtype=torch.bfloat16, enabled=bf16):
        _, z1, l1 = model(first)
        _, z2, l2 = model(second)
        loss, _ = joint_loss(
            (z1.float(), z2.float()), (l1.float(), l2.float()), labels, 0.5, 0.01, 0.05
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _measure(
    device: torch.device,
    steps: int,
    batch: int,
    size: int,
    bf16: bool,
    pipeline: bool,
    patches: torch.Tensor,
    settings: dict,
) -> float:
    torch.manual_seed(0)
    channels_last = bf16 or device.type == "cuda"  # as training lays them out
    model = FishNet(3).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    labels = torch.randint(0, 3, (batch,), device=device)
    prepared = stage_on_device(prepare_set(patches, 255.0, size), device)
    x = to_device(prepared[:batch], device, channels_last)
    ready = (augment(x, settings, generator), augment(x, settings, generator))

    def one() -> None:
        if pipeline:
            index = torch.randint(0, len(prepared), (batch,), device=prepared.device)
            images = to_device(prepared[index], device, channels_last)
            views = augment(images, settings, generator), augment(images, settings, generator)
        else:
            views = ready
        _step(model, optimizer, *views, labels, bf16)

    one()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validate({}, "config", "defaults")
    paint = FishPaintSettings.from_config(config["fish"]["paint"]).for_split("train")
    rng = np.random.default_rng(0)
    images, _, _ = render_patches(rng, paint, assign_conditions(rng, paint.conditions, args.batch))
    patches = torch.from_numpy(quantise(images, 8))
    settings = config["fish"]["augment"]["heavy"]
    devices = [(torch.device("cpu"), False)]
    if cpu_has_bf16_units():
        devices.append((torch.device("cpu"), True))
    if torch.cuda.is_available():
        devices += [(torch.device("cuda"), False), (torch.device("cuda"), True)]
    print(
        f"\njoint loss, ResNet-18, batch {args.batch} x 2 views, {args.size} px, "
        f"{args.threads} CPU threads\n"
    )
    print(
        f"{'device':8} {'precision':9} {'pipeline s/step':>16} {'preloaded s/step':>17} "
        f"{'ratio':>6} {'img/s':>7}"
    )
    rows, pipeline = [], {}
    for device, bf16 in devices:
        full = _measure(device, args.steps, args.batch, args.size, bf16, True, patches, settings)
        bare = _measure(device, args.steps, args.batch, args.size, bf16, False, patches, settings)
        precision = "bf16" if bf16 else "fp32"
        print(
            f"{device.type:8} {precision:9} {full:>16.3f} {bare:>17.3f} "
            f"{full / bare:>6.2f} {args.batch / full:>7.0f}"
        )
        stage = f"FISH training step, {precision}, batch {args.batch}, {args.size} px"
        rows.append(Row(stage, "s/step", full, bare, device.type, "preloaded views"))
        pipeline[precision, device.type] = full
    for kind in ("cpu", "cuda"):
        if ("bf16", kind) in pipeline:
            rows.append(
                Row(
                    "FISH training step, bf16 vs fp32",
                    "s/step",
                    pipeline["bf16", kind],
                    pipeline["fp32", kind],
                    kind,
                    "fp32",
                )
            )
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
