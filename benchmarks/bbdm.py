"""BBDM speed at 64x64: training steps/s and sampling images/s, CPU (and GPU when present),
for the default (CPU-sized) and the paper-sized UNet of the configs; from the rate of whole
reverse steps (network, bridge update and per-sample noise), the time to sample the paper's
31,507 crops with 200 steps. The baseline of a reverse step draws its per-sample noise from
one host generator per crop and copies it over (the sampler's design before the counter-based
noise). ``--compile`` adds torch.compile'd rows. Usage:
    python benchmarks/bbdm.py [--steps 3] [--batch 8] [--sample-batch 32] [--nets default,paper]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from rows import Row, add_json_argument, write_rows

from fishline import models
from fishline.chromosomes.bbdm import BBDMSettings, unet_spec
from fishline.chromosomes.bridge import Bridge, bbdm_loss
from fishline.nets.counter_noise import CounterNormal
from fishline.schema import validate

ROOT = Path(__file__).resolve().parents[1]
PAPER_CROPS, PAPER_STEPS = 31507, 200


def _settings(name: str) -> BBDMSettings:
    file = ROOT / "config" / f"{'config' if name == 'default' else name}.yaml"
    config = yaml.safe_load(file.read_text())
    return BBDMSettings.from_config(validate(config, "config", name)["chromosomes"]["bbdm"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _host_noise(batch: int, device: torch.device) -> Callable[[], torch.Tensor]:
    """Baseline noise: one seeded host generator per crop, stacked and copied over."""
    generators = [torch.Generator().manual_seed(i) for i in range(batch)]
    return lambda: torch.stack([torch.randn((3, 64, 64), generator=g) for g in generators]).to(
        device
    )


def _rate(work: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Calls of ``work`` per second after one warm-up call."""
    work()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    _sync(device)
    return repeats / (time.perf_counter() - start)


def measure(name: str, device: torch.device, compiled: bool, args: argparse.Namespace) -> dict:
    """Train-step, network-call and reverse-step rates of one net on one device."""
    settings = _settings(name)
    model = models.build("bbdm_unet", unet_spec(settings.unet, 3)).to(device)
    bf16 = device.type == "cuda"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    network = torch.compile(model) if compiled else model
    bridge = Bridge()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    x0 = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1
    y = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = bbdm_loss(network, bridge, x0, y, "grad", "l1", generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_rate = _rate(train_step, args.steps, device)
    batch = args.sample_batch if device.type == "cpu" else args.gpu_sample_batch
    yb = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    model.eval()

    def predict(x: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return network(x, c, t).float()

    t = torch.full((batch,), 500, device=device)
    calls_per_s = batch * _rate(lambda: predict(yb, yb, t), args.calls, device)
    steps = bridge.step_list(args.calls + 2)  # warm-up + timed steps + the final x0 step
    noises = {
        "counter": lambda: CounterNormal(range(batch), (3, 64, 64), device),
        "host": lambda: _host_noise(batch, device),
    }
    step_rate = {
        kind: batch
        * (args.calls + 1)
        * _rate(lambda make=make: bridge.sample(predict, yb, "grad", steps, 1.0, make()), 1, device)
        for kind, make in noises.items()
    }
    return {
        "net": name + (" compiled" if compiled else ""),
        "device": device.type,
        "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
        "train steps/s": train_rate,
        "net img/s": calls_per_s,
        "reverse-step img/s": step_rate["counter"],
        "host-noise reverse-step img/s": step_rate["host"],
        "img/s (200 steps)": step_rate["counter"] / 200,
        "31,507 x 200 steps (h)": PAPER_CROPS * PAPER_STEPS / step_rate["counter"] / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--calls", type=int, default=2, help="timed network calls (sampling)")
    parser.add_argument("--batch", type=int, default=8, help="training batch")
    parser.add_argument("--sample-batch", type=int, default=32, help="CPU sampling batch")
    parser.add_argument("--gpu-sample-batch", type=int, default=512)
    parser.add_argument("--nets", default="default,paper", help="config nets to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd nets")
    parser.add_argument(
        "--devices", default="cpu,cuda", help="devices to time (cuda only where present)"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = args.devices.split(",")
    devices = [torch.device(d) for d in wanted if d == "cpu" or torch.cuda.is_available()]
    variants = [False, True] if args.compile else [False]
    rows = [measure(n, d, c, args) for d in devices for n in args.nets.split(",") for c in variants]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    print(
        f"\nSampling time = {PAPER_CROPS} crops x {PAPER_STEPS} reverse steps / (img/s of one"
        " reverse step: network, bridge update, counter noise); 64x64, bf16 autocast and"
        " channels-last on CUDA; baseline = the same step with host-generator noise."
    )
    write_rows(
        args.json,
        [
            entry
            for row in rows
            for entry in (
                Row(f"BBDM training, {row['net']} UNet", "steps/s", row["train steps/s"], None,
                    row["device"]),
                Row(f"BBDM network call, {row['net']} UNet", "img/s", row["net img/s"], None,
                    row["device"]),
                Row(f"BBDM reverse step, {row['net']} UNet", "img/s", row["reverse-step img/s"],
                    row["host-noise reverse-step img/s"], row["device"], "host-generator noise"),
                Row(f"BBDM: 31,507 crops x 200 steps, {row['net']} UNet", "h",
                    row["31,507 x 200 steps (h)"], None, row["device"]),
            )
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
