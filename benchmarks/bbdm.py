"""BBDM speed at 64x64: training steps/s and sampling images/s, CPU (and GPU when present),
for the default (CPU-sized) and the paper-sized UNet of the configs; from the sampling rate,
the time to sample the paper's 31,507 crops with 200 steps. Usage:
    python benchmarks/bbdm.py [--steps 3] [--batch 8] [--sample-batch 32] [--nets default,paper]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml
from rows import Row, add_json_argument, write_rows

from fishline import models
from fishline.bbdm import Bridge, bbdm_loss, unet_spec
from fishline.config import validate

ROOT = Path(__file__).resolve().parents[1]
PAPER_CROPS, PAPER_STEPS = 31507, 200


def _settings(name: str) -> dict:
    file = ROOT / "config" / f"{'config' if name == 'default' else name}.yaml"
    config = yaml.safe_load(file.read_text())
    return validate(config, "config", name)["chromosomes"]["bbdm"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, device: torch.device, args: argparse.Namespace) -> dict:
    """Train-step and network-call rates of one net on one device."""
    settings = _settings(name)
    model = models.build("bbdm_unet", unet_spec(settings, 3)).to(device)
    bf16 = device.type == "cuda"
    bridge = Bridge()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    x0 = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1
    y = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = bbdm_loss(model, bridge, x0, y, "grad", "l1", generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_step()  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    _sync(device)
    train_rate = args.steps / (time.perf_counter() - start)
    batch = args.sample_batch if device.type == "cpu" else args.gpu_sample_batch
    yb = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    t = torch.full((batch,), 500, device=device)
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        model(yb, yb, t)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.calls):
            model(yb, yb, t)
        _sync(device)
    calls_per_s = args.calls * batch / (time.perf_counter() - start)  # image-network calls/s
    return {
        "net": name,
        "device": device.type,
        "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
        "train steps/s": train_rate,
        "train img/s": train_rate * args.batch,
        "img/s (1 step)": calls_per_s,
        "img/s (10 steps)": calls_per_s / 10,
        "img/s (200 steps)": calls_per_s / 200,
        "31,507 x 200 steps (h)": PAPER_CROPS * PAPER_STEPS / calls_per_s / 3600,
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
    parser.add_argument(
        "--devices", default="cpu,cuda", help="devices to time (cuda only where present)"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = args.devices.split(",")
    devices = [torch.device(d) for d in wanted if d == "cpu" or torch.cuda.is_available()]
    rows = [measure(n, d, args) for d in devices for n in args.nets.split(",")]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    print(
        f"\nSampling time = {PAPER_CROPS} crops x {PAPER_STEPS} network calls / (img/s of one"
        " call); training and sampling at 64x64, bf16 autocast on CUDA."
    )
    write_rows(
        args.json,
        [
            entry
            for row in rows
            for entry in (
                Row(f"BBDM training, {row['net']} UNet", "steps/s", row["train steps/s"], None,
                    row["device"]),
                Row(f"BBDM sampling, {row['net']} UNet, one step", "img/s",
                    row["img/s (1 step)"], None, row["device"]),
                Row(f"BBDM: 31,507 crops x 200 steps, {row['net']} UNet", "h",
                    row["31,507 x 200 steps (h)"], None, row["device"]),
            )
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
