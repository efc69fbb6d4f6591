"""Painter speed and memory: fishline vs a per-image FISHPainter re-implementation.

Each variant runs in its own process so its peak memory (max RSS) is its own. Prints one
table; ratios are against the reference measured in the same run. Usage:
    python benchmarks/paint_fish.py [--n 30000] [--reference-n 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rows import Row, add_json_argument, write_rows


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def _reference(count: int, queue: mp.Queue) -> None:
    from fishpainter_reference import paint_one

    from fishline.paint.nuclei import procedural_nuclei
    from fishline.schema import validate

    params = validate({}, "config", "defaults")["fish"]["paint"]["nuclei"]
    rng = np.random.default_rng(0)
    nuclei = procedural_nuclei(rng, 128, params, np.full((20, 2), 63.5))
    library = list(zip(nuclei.dapi, nuclei.mask, strict=True))
    conditions = [(2, 0), (5, 0), (14, 1), (5, 2)]  # normal, gain, amp spots, amp clusters
    start = time.perf_counter()
    for index in range(count):
        paint_one(rng, library, *conditions[index % 4])
    queue.put((time.perf_counter() - start, _peak_mb()))


def _fishline(count: int, threads: int, queue: mp.Queue) -> None:
    from dataclasses import replace

    from fishline.paint import FishPaintSettings, paint_patch_set
    from fishline.paint.fish_settings import Split

    paint = FishPaintSettings()
    paint = replace(paint, splits={**paint.splits, "bench": Split(n=count)})
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        paint_patch_set(
            paint, "bench", 1, Path(folder) / "b.tif", Path(folder) / "b.parquet", threads=threads
        )
        seconds = time.perf_counter() - start
        size = (Path(folder) / "b.tif").stat().st_size / 1e6
    queue.put((seconds, _peak_mb(), size))


def _run(target, *args) -> tuple:
    queue: mp.Queue = mp.get_context("fork").Queue()
    process = mp.get_context("fork").Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30000, help="images for the full fishline run")
    parser.add_argument("--reference-n", type=int, default=60)
    add_json_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    rows = []
    seconds, peak = _run(_reference, args.reference_n)
    reference_rate = args.reference_n / seconds
    rows.append(("FISHPainter algorithm, per image", 1, args.reference_n, seconds, peak, "-"))
    for count, threads in ((2048, 1), (args.n // 10, 2), (args.n, 2)):
        seconds, peak, size = _run(_fishline, count, threads)
        rows.append(
            (
                f"fishline -> TIFF+Parquet ({size:.0f} MB)",
                threads,
                count,
                seconds,
                peak,
                f"{count / seconds / threads / reference_rate:.0f}x",
            )
        )
    print(f"\nmachine: {os.cpu_count()} cores; images 3 x 128 x 128, default conditions\n")
    print(
        f"{'variant':40} {'cores':>5} {'images':>7} {'seconds':>8} {'img/s':>8} "
        f"{'img/s/core':>10} {'peak MB':>8} {'per-core vs ref':>15}"
    )
    for name, threads, count, secs, mem, ratio in rows:
        print(
            f"{name:40} {threads:>5} {count:>7} {secs:>8.1f} {count / secs:>8.0f} "
            f"{count / secs / threads:>10.0f} {mem:>8.0f} {ratio:>15}"
        )
    write_rows(
        args.json,
        [
            Row(
                f"paint FISH patches ({count} on {threads} cores)",
                "img/s/core",
                count / secs / threads,
                reference_rate,
                "cpu",
                "FISHPainter algorithm",
            )
            for _, threads, count, secs, _, _ in rows[1:]
        ],
    )


if __name__ == "__main__":
    main()
