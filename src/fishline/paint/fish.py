"""Single-nucleus FISH patches (the FISHPainter task), vectorised and streamed to disk.

What is painted is a :class:`~fishline.paint.fish_settings.FishPaintSettings` (config block
``fish.paint``). About 430 lines: signal placement per condition and the chunked, seeded,
multi-process writer share the condition tables, so they stay together.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.io import atomic_outputs, encode_pages, write_stack
from fishline.logging import get_logger, progress_bar
from fishline.paint.draws import bounds, integers, uniform
from fishline.paint.fish_settings import SIGNAL_KEYS, Condition, FishPaintSettings
from fishline.paint.noise import band_noise
from fishline.paint.nuclei import Nuclei, NucleusLibrary, procedural_nuclei
from fishline.paint.optics import apply_optics, quantise
from fishline.paint.signals import (
    Blobs,
    random_walks,
    render_blobs,
    sample_positions,
    single_spots,
)

CHANNELS = ("red", "green", "dapi")
OOD_CLASS = "ood"  # class name of out-of-distribution patches (no FISH signals)
SPOT_WINDOW = 21
CLUSTER_WINDOW = 41
log = get_logger("paint")


def assign_conditions(
    rng: np.random.Generator, conditions: tuple[Condition, ...], count: int
) -> np.ndarray:
    """Condition index per image: exact shares by weight (largest remainder), shuffled."""
    weights = np.array([c.weight for c in conditions], float)
    share = weights / weights.sum() * count
    numbers = np.floor(share).astype(int)
    numbers[np.argsort(-(share - numbers), kind="stable")[: count - numbers.sum()]] += 1
    order = np.repeat(np.arange(len(conditions)), numbers)
    return rng.permutation(order)


def _per_condition(
    rng: np.random.Generator, settings: FishPaintSettings, cond: np.ndarray, key: str, kind: str
) -> np.ndarray:
    """Draw one value per item from its condition's range for ``key`` (the painter's where
    the condition leaves it)."""
    out = np.zeros(len(cond), np.float32 if kind == "float" else np.int64)
    for index, condition in enumerate(settings.conditions):
        chosen = np.flatnonzero(cond == index)
        value = settings.of(condition, key)
        draw = uniform if kind == "float" else integers
        out[chosen] = draw(rng, value, len(chosen))
    return out


def _eroded(mask: np.ndarray, margin: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return np.stack([cv2.erode(m.astype(np.uint8), kernel) > 0 for m in mask])


def _draw_nuclei(
    rng: np.random.Generator,
    settings: FishPaintSettings,
    centres: np.ndarray,
    library: NucleusLibrary | None,
) -> Nuclei:
    if library is not None:
        return library.draw(rng, settings.patch_size, settings.nuclei, centres)
    return procedural_nuclei(rng, settings.patch_size, settings.nuclei, centres)


def _spot_blobs(
    rng: np.random.Generator,
    settings: FishPaintSettings,
    cond: np.ndarray,
    owners: np.ndarray,
    allowed: np.ndarray,
    channel: int,
    kind: str = "spot",
) -> Blobs:
    """Single dots inside the nuclei: FISH spots (``kind`` spot) or double minutes (minute:
    many tiny dim dots free to touch), sized by ``{kind}_sigma`` and ``{kind}_intensity``."""
    sigma = _per_condition(rng, settings, cond[owners], f"{kind}_sigma", "float")
    peak = _per_condition(rng, settings, cond[owners], f"{kind}_intensity", "float")
    return single_spots(rng, allowed, owners, channel, sigma, peak)


def _cluster_blobs(
    rng: np.random.Generator,
    settings: FishPaintSettings,
    cond: np.ndarray,
    owners: np.ndarray,
    allowed: np.ndarray,
    channel: int,
) -> tuple[Blobs, np.ndarray]:
    sizes = _per_condition(rng, settings, cond[owners], "cluster_size", "int")
    centre = sample_positions(rng, allowed, owners)
    step = bounds(settings.cluster_step)
    members = random_walks(rng, allowed, owners, centre, sizes, step, CLUSTER_WINDOW / 2 - 8)
    blobs = Blobs(
        image=owners,
        channel=np.full(len(owners), channel),
        centre=centre,
        members=members,
        sigma=_per_condition(rng, settings, cond[owners], "spot_sigma", "float"),
        peak=_per_condition(rng, settings, cond[owners], "spot_intensity", "float"),
    )
    return blobs, sizes


def _add_clouds(
    rng: np.random.Generator,
    settings: FishPaintSettings,
    cond: np.ndarray,
    owners: np.ndarray,
    nuclei: Nuclei,
    channel: int,
    images: np.ndarray,
) -> None:
    """Signal clouds (homogeneously staining regions): a granular, diffuse region covering
    part of the nucleus and stopping at its edge, added in place."""
    size = images.shape[-1]
    radius = (
        _per_condition(rng, settings, cond[owners], "cloud_size", "float") * nuclei.diameter[owners]
    )
    peak = _per_condition(rng, settings, cond[owners], "cloud_intensity", "float")
    centre = sample_positions(rng, nuclei.mask, owners)
    grain = band_noise(rng, (len(owners), size, size), 0.08, 0.3, unit=True)
    grid = np.arange(size, dtype=np.float32)
    for index, owner in enumerate(owners):
        distance2 = (grid[None, :] - centre[index, 0]) ** 2 + (
            grid[:, None] - centre[index, 1]
        ) ** 2
        envelope = np.exp(-distance2 / (2 * radius[index] ** 2))
        cloud = peak[index] * envelope * (0.35 + 0.65 * grain[index]) * nuclei.mask[owner]
        images[owner, channel] += cloud.astype(np.float32)


def _per_image_lists(values: np.ndarray, owners: np.ndarray, count: int) -> list[list[float]]:
    """Split a flat per-signal array into one Python list per image (for list columns)."""
    order = np.argsort(owners, kind="stable")
    split = np.split(values[order], np.cumsum(np.bincount(owners, minlength=count))[:-1])
    return [np.round(part, 2).tolist() for part in split]


def render_patches(
    rng: np.random.Generator,
    settings: FishPaintSettings,
    cond: np.ndarray,
    library: NucleusLibrary | None = None,
    stain: str = "fish",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Paint one batch: returns float images (B x 3 x H x W), nucleus masks and the draws.

    ``cond`` holds each image's condition index. Channels are red, green, DAPI; the
    configured probe colours decide which of red/green carries the target. ``stain``
    ``surface`` paints out-of-distribution cells instead (no FISH signals).
    """
    count, size = len(cond), settings.patch_size
    realism = settings.realism
    target = CHANNELS.index(settings.probes.target)
    reference = CHANNELS.index(settings.probes.reference)
    centres = size / 2 - 0.5 + rng.uniform(-2, 2, (count, 2))
    nuclei = _draw_nuclei(rng, settings, centres, library)
    margin = max(1, math.ceil(2 * bounds(settings.spot_sigma)[1]))
    allowed = _eroded(nuclei.mask, margin)
    surface = stain == "surface"
    counts = {
        key: _per_condition(rng, settings, cond, key, "int") * (not surface) for key in SIGNAL_KEYS
    }
    _fit_room(allowed, counts, nuclei, settings, cond)

    images = np.zeros((count, 3, size, size), np.float32)
    images[:, 2] = nuclei.dapi
    record: dict[str, Any] = {
        "condition": ["surface_stain" if surface else settings.conditions[c].name for c in cond],
        "class_name": [OOD_CLASS if surface else settings.conditions[c].class_ for c in cond],
        **{key: value for key, value in counts.items()},
        "nucleus_source": nuclei.source.tolist(),
        "nucleus_diameter": np.round(nuclei.diameter, 2),
    }
    # Drawn even when the knob is off, so switching it changes nothing else in the image.
    dim = uniform(rng, realism["dim_reference"]["factor"], count)
    if not realism["dim_reference"]["enabled"]:
        dim[:] = 1.0
    record["reference_brightness"] = dim
    for probe, channel in (("target", target), ("reference", reference)):
        owners = np.repeat(np.arange(count), counts[f"{probe}_spots"])
        spots = _spot_blobs(rng, settings, cond, owners, allowed, channel)
        if probe == "reference":
            spots.peak *= dim[owners]
        render_blobs(rng, spots, SPOT_WINDOW, settings.spot_cut, settings.warp, images)
        record[f"{probe}_x"] = _per_image_lists(spots.centre[:, 0], owners, count)
        record[f"{probe}_y"] = _per_image_lists(spots.centre[:, 1], owners, count)
        owners = np.repeat(np.arange(count), counts[f"{probe}_clusters"])
        clusters, sizes = _cluster_blobs(rng, settings, cond, owners, allowed, channel)
        if probe == "reference":
            clusters.peak *= dim[owners]
        render_blobs(rng, clusters, CLUSTER_WINDOW, settings.spot_cut, settings.warp, images)
        record[f"{probe}_cluster_sizes"] = _per_image_lists(sizes.astype(float), owners, count)
    # Amplification as real slides also show it; drawn only when a condition asks for it,
    # so settings without these presentations paint the same bytes as before.
    for key in ("target_minutes", "target_clouds"):
        if any(bounds(getattr(c, key))[1] > 0 for c in settings.conditions):
            record[key] = _per_condition(rng, settings, cond, key, "int") * (not surface)
            owners = np.repeat(np.arange(count), record[key])
            if key == "target_minutes":
                minutes = _spot_blobs(rng, settings, cond, owners, allowed, target, "minute")
                render_blobs(rng, minutes, SPOT_WINDOW, settings.spot_cut, settings.warp, images)
            else:
                _add_clouds(rng, settings, cond, owners, nuclei, target, images)

    if surface:
        _add_surface_stain(rng, images, nuclei.mask, (target, reference))
    mask_all = nuclei.mask.copy()
    if realism["neighbours"]["enabled"]:
        record["neighbour"] = _add_neighbours(
            rng, images, nuclei, mask_all, settings, library, (target, reference)
        )
    record.update(apply_optics(rng, images, mask_all, realism, settings.warp))
    return images, nuclei.mask, record


def _add_surface_stain(
    rng: np.random.Generator, images: np.ndarray, mask: np.ndarray, channels: tuple[int, int]
) -> None:
    """Out-of-distribution staining (no FISH spots): a membrane ring in the target channel
    and a cytoplasm-like halo in the reference channel, as in immunofluorescence."""
    count, _, height, width = images.shape
    texture = 1 + 0.5 * band_noise(rng, (count, 2, height, width), 0.02, 0.2)
    widths = integers(rng, (2, 4), count)
    reach = integers(rng, (6, 14), count)
    for index in range(count):
        inner = _eroded(mask[index][None], int(widths[index]))[0]
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach[index] + 1,) * 2)
        halo = cv2.dilate(mask[index].astype(np.uint8), grow) > 0
        ring = cv2.GaussianBlur((mask[index] & ~inner).astype(np.float32), (0, 0), 1.0)
        cytoplasm = cv2.GaussianBlur((halo & ~mask[index]).astype(np.float32), (0, 0), 3.0)
        images[index, channels[0]] += ring * texture[index, 0] * rng.uniform(0.3, 0.9)
        images[index, channels[1]] += cytoplasm * texture[index, 1] * rng.uniform(0.1, 0.4)


def _fit_room(
    allowed: np.ndarray,
    counts: dict[str, np.ndarray],
    nuclei: Nuclei,
    settings: FishPaintSettings,
    cond: np.ndarray,
) -> None:
    """Cap, in place, the signals of a nucleus drawn too small for its condition's counts
    (size and aspect ranges that :class:`FishPaintSettings` accepts can still draw a small,
    elongated nucleus): target spots go first, then reference spots, then clusters. One such
    draw among hundreds of fields must not fail the run; the record keeps the counts painted.
    """
    sigma = bounds(settings.spot_sigma)[0]
    room = np.floor(allowed.sum(axis=(1, 2)) / (math.pi * (2 * sigma) ** 2)).astype(np.int64)
    wanted = sum(counts.values())
    excess = np.maximum(wanted - room, 0)
    short = np.flatnonzero(excess)
    if not len(short):
        return
    first = short[0]
    for key in SIGNAL_KEYS:
        cut = np.minimum(excess, counts[key])
        counts[key] -= cut
        excess -= cut
    log.warning(
        "%d nucleus(es) too small for their signals, counts capped to fit; first: nucleus %s, "
        "condition '%s', diameter %.0f px, %d signals wanted, room for %d",
        len(short),
        nuclei.source[first],
        settings.conditions[cond[first]].name,
        nuclei.diameter[first],
        wanted[first],
        room[first],
    )


def _add_neighbours(
    rng: np.random.Generator,
    images: np.ndarray,
    nuclei: Nuclei,
    mask_all: np.ndarray,
    settings: FishPaintSettings,
    library: NucleusLibrary | None,
    channels: tuple[int, int],
) -> np.ndarray:
    """Fragments of neighbouring nuclei (with their own signals) entering from the border."""
    count, size = len(images), settings.patch_size
    knob = settings.realism["neighbours"]
    chosen = np.flatnonzero(rng.random(count) < knob["probability"])
    flags = np.zeros(count, bool)
    if len(chosen) == 0:
        return flags
    angle = rng.uniform(0, 2 * math.pi, len(chosen))
    own = nuclei.diameter[chosen] / 2
    other = uniform(rng, settings.nuclei["diameter"], len(chosen)) / 2
    distance = own + other * uniform(rng, knob["gap"], len(chosen))
    centres = size / 2 + np.stack([np.cos(angle), np.sin(angle)], 1) * distance[:, None]
    neighbours = _draw_nuclei(rng, settings, centres, library)
    visible = neighbours.mask & ~nuclei.mask[chosen]
    images[chosen, 2] += neighbours.dapi * visible
    mask_all[chosen] |= neighbours.mask
    flags[chosen] = visible.any(axis=(1, 2))
    room = _eroded(visible, 2)
    has_room = np.flatnonzero(room.any(axis=(1, 2)))
    for channel, spots_range in zip(
        channels, (knob["target_spots"], knob["reference_spots"]), strict=True
    ):
        numbers = integers(rng, spots_range, len(has_room))
        owners = np.repeat(has_room, numbers)
        sigma = uniform(rng, settings.spot_sigma, len(owners))
        peak = uniform(rng, settings.spot_intensity, len(owners))
        blobs = single_spots(rng, room, owners, channel, sigma, peak)
        blobs.image = chosen[owners]
        render_blobs(rng, blobs, SPOT_WINDOW, settings.spot_cut, settings.warp, images)
    return flags


def _render_chunk(
    job: tuple[np.random.SeedSequence, FishPaintSettings, np.ndarray, NucleusLibrary | None, str],
) -> tuple[list[bytes] | np.ndarray, dict[str, Any]]:
    """Paint, quantise and encode one chunk (runs in a worker process)."""
    seed, settings, cond, library, stain = job
    rng = np.random.default_rng(seed)
    images, _, record = render_patches(rng, settings, cond, library, stain)
    return encode_pages(quantise(images, settings.bit_depth), settings.compression), record


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _ordered_results(jobs: list, threads: int) -> Iterator[tuple[Any, dict]]:
    """Render chunks in order, at most ``2 x threads`` in flight, so memory stays flat.

    Workers are spawned, not forked: a fork of a process whose OpenMP or torch thread pools
    are already running (as in a test session or a notebook) can deadlock in the child. As
    with any spawning code, a calling script must guard its body with
    ``if __name__ == "__main__":``.
    """
    if threads <= 1:
        yield from map(_render_chunk, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(threads, mp_context=context, initializer=_init_worker) as pool:
        pending: list[Future] = []
        for job in jobs:
            pending.append(pool.submit(_render_chunk, job))
            if len(pending) >= 2 * threads:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def paint_patch_set(
    paint: FishPaintSettings,
    split: str,
    seed: int,
    stack: str | Path,
    table: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Paint the ``split`` patch set: TIFF stack (N x 3 x H x W) + Parquet of what was drawn.

    Chunk seeds are spawned from ``seed``, so the bytes do not depend on ``threads``.
    """
    settings, spec = paint.for_split(split), paint.splits[split]
    library = None
    if settings.nuclei["source"] == "library":
        library = NucleusLibrary.from_sheet(settings.nuclei["library"])
    count, chunk, size = spec.n, settings.chunk_size, settings.patch_size
    root = np.random.SeedSequence(seed)
    assign_seed, *chunk_seeds = root.spawn(1 + math.ceil(count / chunk))
    cond = assign_conditions(np.random.default_rng(assign_seed), settings.conditions, count)
    jobs = [
        (chunk_seeds[i], settings, cond[i * chunk : (i + 1) * chunk], library, spec.stain)
        for i in range(len(chunk_seeds))
    ]
    log.info("painting %d %s patches in %d chunks on %d threads", count, split, len(jobs), threads)
    records: list[pd.DataFrame] = []
    progress = progress_bar(total=count, desc=f"paint {split}", unit="img")

    def pages() -> Iterator[np.ndarray]:
        for encoded, record in _ordered_results(jobs, threads):
            records.append(pd.DataFrame(record))
            progress.update(len(records[-1]))
            yield from encoded

    dtype = np.uint8 if settings.bit_depth == 8 else np.uint16
    with atomic_outputs(stack, table) as (stack_tmp, table_tmp):
        write_stack(
            stack_tmp,
            pages(),
            (count, 3, size, size),
            dtype,
            CHANNELS,
            settings.compression,
            {"target": settings.probes.target, "bit_depth": settings.bit_depth},
        )
        progress.close()
        frame = pd.concat(records, ignore_index=True)
        class_index = {name: i for i, name in enumerate(settings.classes)}
        frame.insert(0, "index", np.arange(count))
        labels = frame["class_name"].map(class_index).fillna(-1).astype(np.int64)
        frame.insert(1, "label", labels)  # -1: out of distribution
        frame.insert(2, "split", split)
        frame["chunk"] = np.arange(count) // chunk
        frame["seed"] = seed
        frame.to_parquet(table_tmp, index=False)
    log.info("class counts: %s", frame["class_name"].value_counts().to_dict())
    return frame
