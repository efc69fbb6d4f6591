"""Synthetic metaphase spreads for the chromosome-painting assay, with instance masks.

About 46 banded rods (22 autosome pairs + XX or XY) with a centromere constriction, bent
slightly or folded at one point, scattered over a round spread, a few touching or crossing;
interphase nuclei and debris around; paints colour chosen chromosomes (default 2 red,
4 green, 12 yellow). Reciprocal translocations exchange arm ends between two chromosomes, so
both derivatives carry two segments. Optics and camera noise are the FISH painter's (:mod:`optics`).

About 650 lines, one module: rendering a rod, placing rods (free, touching, crossing) and
painting the spread are one process with one set of settings, read top to bottom.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_image
from fishline.logging import get_logger, progress_bar
from fishline.paint.draws import Range, bounds, integers, uniform, weighted_names
from fishline.paint.nuclei import procedural_nuclei
from fishline.paint.optics import apply_optics, quantise
from fishline.paint.spread_settings import KEY, Brightness, SpreadDebris, SpreadSettings

log = get_logger("paint.metaphase")

CHROM_CHANNELS: tuple[str, ...] = ("dapi", "red", "green")

# Relative lengths (% of the haploid autosome set) and centromere index p / (p + q) of
# chromosomes 1-22, X (23), Y (24): ISCN ideogram values, rounded.
RELATIVE_LENGTH = np.array(
    [8.44, 8.02, 6.83, 6.30, 6.08, 5.90, 5.36, 4.93, 4.80, 4.59, 4.61, 4.66,
     3.74, 3.56, 3.46, 3.36, 3.25, 2.93, 2.67, 2.56, 1.90, 2.04, 5.12, 2.15]
) / 8.44  # fmt: skip
CENTROMERE_INDEX = np.array(
    [0.48, 0.39, 0.47, 0.29, 0.29, 0.39, 0.39, 0.34, 0.35, 0.32, 0.40, 0.27,
     0.15, 0.15, 0.16, 0.41, 0.34, 0.31, 0.46, 0.45, 0.20, 0.20, 0.40, 0.28]
)  # fmt: skip
# Paint colour -> (red, green) channel weights; the optics code keeps red, green, DAPI order.
COLOURS = {"none": (0.0, 0.0), "red": (1.0, 0.0), "green": (0.0, 1.0), "yellow": (1.0, 1.0)}
RED, GREEN, DAPI = 0, 1, 2


@dataclass
class Piece:
    """A stretch of a source chromosome: ``start`` -> ``stop`` as fractions from its p end."""

    chromosome: int
    start: float
    stop: float
    length: float  # px


@dataclass
class Chromosome:
    """One chromosome instance: pieces from p end to q end and its centromere position."""

    number: int
    pieces: list[Piece]
    centromere: float  # px from the p end
    width: float
    partner: int = 0
    exchange: int = 0

    @property
    def length(self) -> float:
        return sum(piece.length for piece in self.pieces)


@cache
def band_profile(chromosome: int) -> np.ndarray:
    """Zero-mean DAPI band pattern (256 samples p -> q) fixed per chromosome number.

    Homologues and the pieces of a derivative thus show the same bands, as real Q-bands do.
    """
    rng = np.random.default_rng([20260403, chromosome])
    bands = int(6 + 14 * RELATIVE_LENGTH[chromosome - 1])
    centres = (np.arange(bands) + rng.uniform(0.2, 0.8, bands)) / bands
    signs = rng.choice([-1.0, 1.0], bands) * rng.uniform(0.5, 1.0, bands)
    grid = np.linspace(0, 1, 256)[:, None]
    profile = (signs * np.exp(-(((grid - centres) * bands * 2.2) ** 2))).sum(axis=1)
    profile -= profile.mean()
    return (profile / np.abs(profile).max()).astype(np.float32)


def paint_of(paint: SpreadSettings) -> dict[int, str]:
    """Chromosome number -> paint colour for every chromosome 1-24 ('none' if unpainted)."""
    colours = dict.fromkeys(range(1, 25), "none")
    for colour, numbers in paint.paints.items():
        colours.update(dict.fromkeys(numbers, colour))
    return colours


def karyotype(rng: np.random.Generator, paint: SpreadSettings) -> np.ndarray:
    """Chromosome numbers of one spread: 2 x 1-22 + XX or XY, minus lost / plus extra autosomes."""
    sex = [23, 23] if rng.random() < paint.xx_fraction else [23, 24]
    autosomes = np.repeat(np.arange(1, 23), 2)
    count = int(integers(rng, paint.count, 1)[0])
    if count < 46:
        autosomes = rng.permutation(autosomes)[: count - 2]
    elif count > 46:
        autosomes = np.concatenate([autosomes, rng.integers(1, 23, count - 46)])
    return np.sort(np.concatenate([autosomes, sex]))


def _derivative(
    own: Chromosome,
    own_cut: tuple[bool, float],
    other: Chromosome,
    other_cut: tuple[bool, float],
    exchange: int,
) -> Chromosome:
    """``own``'s centric part joined at its break to ``other``'s distal piece, tip outwards.

    A cut is (on the p arm, position as a fraction from the p end).
    """
    total = own.length
    p_arm, cut = own_cut
    other_p, other_x = other_cut
    tip = 0.0 if other_p else 1.0  # the distal piece of the partner runs break -> tip
    span = abs(tip - other_x) * other.length
    if p_arm:
        centric = Piece(own.number, cut, 1.0, (1 - cut) * total)
        pieces = [Piece(other.number, tip, other_x, span), centric]
        centromere = span + own.centromere - cut * total
    else:
        centric = Piece(own.number, 0.0, cut, cut * total)
        pieces = [centric, Piece(other.number, other_x, tip, span)]
        centromere = own.centromere
    return Chromosome(own.number, pieces, centromere, own.width, other.number, exchange)


def _exchange(
    rng: np.random.Generator, a: Chromosome, b: Chromosome, breakpoint: Range, exchange: int
) -> tuple[Chromosome, Chromosome]:
    """Reciprocal translocation: A and B swap the ends distal to one break in each."""
    cuts = []
    for chrom in (a, b):
        index = chrom.centromere / chrom.length
        along = float(uniform(rng, breakpoint, 1)[0])
        p_arm = rng.random() < index  # an arm is hit in proportion to its length
        cut = index * (1 - along) if p_arm else index + along * (1 - index)
        cuts.append((p_arm, cut))
    return (
        _derivative(a, cuts[0], b, cuts[1], exchange),
        _derivative(b, cuts[1], a, cuts[0], exchange),
    )


def _translocate(
    rng: np.random.Generator, chromosomes: list[Chromosome], paint: SpreadSettings
) -> list[Chromosome]:
    """Replace random partner pairs by their derivatives (each chromosome in one exchange)."""
    settings = paint.translocations
    number = int(rng.poisson(settings.rate))
    colours = paint_of(paint)
    free = list(range(len(chromosomes)))
    for exchange in range(1, number + 1):
        kind = weighted_names(rng, settings.kinds, 1)[0]
        painted = [i for i in free if colours[chromosomes[i].number] != "none"]
        plain = [i for i in free if colours[chromosomes[i].number] == "none"]
        first, second = {
            "painted_unpainted": (painted, plain),
            "painted_painted": (painted, painted),
            "unpainted_unpainted": (plain, plain),
        }[kind]
        if not first:
            continue
        i = int(rng.choice(first))
        second = [j for j in second if j != i]
        if not second:
            continue
        j = int(rng.choice(second))
        chromosomes[i], chromosomes[j] = _exchange(
            rng, chromosomes[i], chromosomes[j], settings.breakpoint, exchange
        )
        free = [k for k in free if k not in (i, j)]
    return chromosomes


@dataclass
class Rod:
    """A chromosome rendered in its own patch: signals (3 x P x P), mask and geometry."""

    signal: np.ndarray
    mask: np.ndarray
    centre: np.ndarray  # x, y inside the patch
    angle: float  # degrees, p -> q direction at the midpoint


def _arc_axis(
    rng: np.random.Generator,
    dx: np.ndarray,
    dy: np.ndarray,
    theta: float,
    length: float,
    bend: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Position along (u, from the p end) and distance from (d) an evenly bent axis through
    the patch centre, tangent to ``theta``, bent by ``bend`` radians in all (random sign)."""
    bend *= rng.choice([-1.0, 1.0])
    radius = length / bend if abs(bend) > 1e-3 else 1e4
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    # arc through the patch centre, tangent to theta, bending towards +across
    sign = 1.0 if radius > 0 else -1.0
    reach = np.hypot(along, across - radius)
    u = abs(radius) * np.arctan2(along, (radius - across) * sign) + length / 2
    d = np.abs(reach - abs(radius))
    return u.astype(np.float32), d.astype(np.float32)


def _kinked_axis(
    rng: np.random.Generator,
    dx: np.ndarray,
    dy: np.ndarray,
    theta: float,
    length: float,
    kink: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Position along (u) and distance from (d) an axis of two straight arms meeting at a
    kink of ``kink`` radians (random sign) a quarter to three quarters along, its ends
    centred on the patch, as real chromosomes fold at one point (a "V" or "L")."""
    kink *= rng.choice([-1.0, 1.0])
    joint_at = rng.uniform(0.25, 0.75) * length
    first = np.array([math.cos(theta - kink / 2), math.sin(theta - kink / 2)])
    second = np.array([math.cos(theta + kink / 2), math.sin(theta + kink / 2)])
    joint = -((length - joint_at) * second - joint_at * first) / 2
    px, py = dx - joint[0], dy - joint[1]
    arms = []
    for direction, sign in ((first, -1.0), (second, 1.0)):
        # from the joint out along the arm; past its free end u leaves [0, length] (the cap)
        along = np.clip(sign * (px * direction[0] + py * direction[1]), 0, None)
        gap = np.hypot(px - sign * along * direction[0], py - sign * along * direction[1])
        arms.append((joint_at + sign * along, gap))
    (u_first, d_first), (u_second, d_second) = arms
    closer = d_first <= d_second
    return (
        np.where(closer, u_first, u_second).astype(np.float32),
        np.where(closer, d_first, d_second).astype(np.float32),
    )


def _render(
    rng: np.random.Generator,
    chrom: Chromosome,
    colours: dict[int, str],
    style: dict[str, float],
    paint_level: np.ndarray,
) -> Rod:
    """Draw one bent, banded, constricted rod with its paint segments in a square patch."""
    length, width = chrom.length, chrom.width
    half = math.ceil(length / 2 + width) + 2
    size = 2 * half + 1
    centre = half + rng.uniform(-0.5, 0.5, 2)
    theta = rng.uniform(0, 2 * math.pi)
    grid = np.arange(size, dtype=np.float64)
    dx, dy = grid[None, :] - centre[0], grid[:, None] - centre[1]
    if style["kink"]:
        u, d = _kinked_axis(rng, dx, dy, theta, length, math.radians(style["kink"]))
    else:
        u, d = _arc_axis(rng, dx, dy, theta, length, math.radians(style["bend"]))
    end = np.minimum(u, length - u)
    cap_radius = width / 2
    cap = np.sqrt(np.clip(1 - (np.clip(cap_radius - end, 0, None) / cap_radius) ** 2, 0, 1))
    neck = 1 - style["constriction"] * np.exp(-(((u - chrom.centromere) / (0.5 * width)) ** 2))
    half_width = cap_radius * cap * neck
    cover = np.clip(half_width - d + 0.5, 0, 1) * (half_width > 0)
    mask = d < half_width

    band = np.zeros_like(u)
    red = np.zeros_like(u)
    green = np.zeros_like(u)
    start = 0.0
    for piece in chrom.pieces:
        inside = (u >= start) & (u < start + piece.length)
        where = piece.start + (u - start) / piece.length * (piece.stop - piece.start)
        profile = band_profile(piece.chromosome)
        band = np.where(inside, np.interp(where, np.linspace(0, 1, 256), profile), band)
        weight_red, weight_green = COLOURS[colours[piece.chromosome]]
        red = np.where(inside, weight_red, red)
        green = np.where(inside, weight_green, green)
        start += piece.length
    relative = np.clip(d / np.maximum(half_width, 1e-3), 0, 1)
    body = 0.75 + 0.25 * np.sqrt(1 - relative**2)  # a rod is thicker along its axis
    away = 1 - np.exp(-(((u - chrom.centromere) / width) ** 2))  # chromatids join there
    groove = 1 - style["chromatids"] * away * np.exp(-((d / (0.15 * width)) ** 2))
    shape = (cover * body).astype(np.float32)
    signal = np.stack(
        [
            paint_level[RED] * red * shape,
            paint_level[GREEN] * green * shape,
            style["intensity"] * (1 + style["banding"] * band) * groove * shape,
        ]
    ).astype(np.float32)
    # the reported angle is the tangent at the midpoint, from the p end to the q end
    return Rod(signal, mask, centre, math.degrees(theta) % 360)


def _brightness(rng: np.random.Generator, centres: np.ndarray, settings: Brightness) -> np.ndarray:
    """DAPI brightness factor per chromosome: log-normal with a standard deviation drawn per
    spread, part of its variance a linear ramp across the spread (uneven staining or
    illumination: real spreads show both)."""
    spread = float(uniform(rng, settings.spread, 1)[0])
    share = float(uniform(rng, settings.gradient, 1)[0])
    independent = rng.standard_normal(len(centres))
    angle = rng.uniform(0, 2 * math.pi)
    ramp = centres @ np.array([math.cos(angle), math.sin(angle)])
    ramp = (ramp - ramp.mean()) / max(float(ramp.std()), 1e-6)
    log_factor = spread * (math.sqrt(1 - share) * independent + math.sqrt(share) * ramp)
    return np.exp(log_factor).astype(np.float32)


class _Canvas:
    """Placement bookkeeping: top-most label per pixel and how many rods cover it."""

    def __init__(self, height: int, width: int) -> None:
        self.labels = np.zeros((height, width), np.int32)
        self.cover = np.zeros((height, width), np.uint8)
        self.full: list[int] = []

    def window(self, corner: tuple[int, int], size: int) -> tuple[slice, slice]:
        """Rows and columns of a ``size`` patch whose top-left corner is (x, y)."""
        x0, y0 = corner
        return slice(y0, y0 + size), slice(x0, x0 + size)

    def fits(self, corner: tuple[int, int], size: int) -> bool:
        """Whether that patch lies wholly inside the image."""
        x0, y0 = corner
        height, width = self.labels.shape
        return x0 >= 0 and y0 >= 0 and x0 + size <= width and y0 + size <= height

    def accepts(
        self,
        rod: Rod,
        grown: np.ndarray,
        touch: np.ndarray,
        corner: tuple[int, int],
        mode: str,
        max_overlap: float,
    ) -> bool:
        """Whether ``rod`` at ``corner`` is free (``grown`` clear), touching or crossing."""
        size = rod.mask.shape[0]
        if not self.fits(corner, size):
            return False
        window = self.window(corner, size)
        taken = self.cover[window] > 0
        if mode == "free":
            return not (grown & taken).any()
        if mode == "touching":
            return bool((touch & taken).any()) and not (rod.mask & taken).any()
        under = self.labels[window][rod.mask & taken]
        if len(under) == 0 or len(under) > max_overlap * rod.mask.sum():
            return False
        if mode == "crossing alone" and len(np.unique(self.labels[window][grown & taken])) > 1:
            return False  # it may cross one chromosome and come near no other
        lost = np.bincount(under, minlength=len(self.full) + 1)[1:]
        visible = np.bincount(self.labels.ravel(), minlength=len(self.full) + 1)[1:]
        return bool(np.all(visible - lost >= (1 - max_overlap) * np.asarray(self.full)))

    def put(self, rod: Rod, corner: tuple[int, int]) -> None:
        """Draw ``rod`` on top, labelled with the next id."""
        window = self.window(corner, rod.mask.shape[0])
        self.labels[window][rod.mask] = len(self.full) + 1
        self.cover[window] += rod.mask
        self.full.append(int(rod.mask.sum()))


def _place(
    rng: np.random.Generator,
    canvas: _Canvas,
    rods: list[Rod],
    paint: SpreadSettings,
    scale: float,
) -> list[tuple[int, int]]:
    """Corners for every rod: free inside the spread, or in contact with one placed before."""
    height, width = canvas.labels.shape
    middle = np.array([width, height]) / 2 + rng.uniform(-0.12, 0.12, 2) * [width, height]
    radius = float(uniform(rng, paint.spread_radius, 1)[0]) * scale
    squash = rng.uniform(0.75, 1.0)
    tilt = rng.uniform(0, math.pi)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * paint.gap + 1,) * 2)
    corners: list[tuple[int, int]] = []
    centres: list[np.ndarray] = []
    for rod in rods:
        draw = rng.random()
        mode = (
            "touching"
            if draw < paint.touching
            else "crossing"
            if draw < paint.touching + paint.crossing
            else "free"
        )
        grown = cv2.dilate(rod.mask.astype(np.uint8), kernel).astype(bool)
        touch = cv2.dilate(rod.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        for attempt in range(400):
            if mode != "free" and centres and attempt < 100:
                anchor = centres[int(rng.integers(len(centres)))]
                if mode == "crossing" and paint.crossing_at == "middle":
                    # two chromosomes crossing near their middles, apart from the others
                    target = anchor + rng.normal(0, rod.mask.shape[0] / 12, 2)
                    try_mode = "crossing alone"
                else:
                    target = anchor + rng.normal(0, rod.mask.shape[0] / 3, 2)
                    try_mode = mode
            else:
                # free placement widens the spread slowly when it is crowded
                scale = radius * (1 + attempt / 150) * math.sqrt(rng.random())
                turn = rng.uniform(0, 2 * math.pi)
                offset = np.array([math.cos(turn), squash * math.sin(turn)]) * scale
                rotation = np.array(
                    [[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]]
                )
                target = middle + rotation @ offset
                try_mode = "free"
            corner = tuple(int(v) for v in np.rint(target - rod.centre))
            if canvas.accepts(rod, grown, touch, corner, try_mode, paint.max_overlap):
                break
        else:
            raise InputError(
                "config",
                f"cannot place {len(rods)} chromosomes in a {height} x {width} image; "
                "enlarge it or shorten the chromosomes",
                item=f"{KEY}.size",
            )
        canvas.put(rod, corner)
        corners.append(corner)
        centres.append(np.asarray(corner) + rod.centre)
    return corners


def _add_nuclei(
    rng: np.random.Generator, image: np.ndarray, taken: np.ndarray, params: dict[str, Any]
) -> np.ndarray:
    """Interphase nuclei (procedural, as in FISH fields) away from the chromosomes; their mask."""
    height, width = taken.shape
    mask = np.zeros_like(taken)
    count = int(integers(rng, params["count"], 1)[0])
    if count == 0:
        return mask
    patch = math.ceil(bounds(params["diameter"])[1] * 1.3) | 1
    middle = np.full((count, 2), patch / 2, np.float32)
    nuclei = procedural_nuclei(rng, patch, params, middle)
    clearance = cv2.dilate(taken.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    for index in range(count):
        for _ in range(30):
            x0 = int(rng.integers(-patch // 3, width - 2 * patch // 3))
            y0 = int(rng.integers(-patch // 3, height - 2 * patch // 3))
            ys = slice(max(y0, 0), min(y0 + patch, height))
            xs = slice(max(x0, 0), min(x0 + patch, width))
            own = nuclei.mask[index, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            if not (own & (clearance[ys, xs] | mask[ys, xs])).any():
                dapi = nuclei.dapi[
                    index, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0
                ]
                image[DAPI, ys, xs] += dapi
                mask[ys, xs] |= own
                break
    return mask


def _add_debris(
    rng: np.random.Generator, image: np.ndarray, taken: np.ndarray, params: SpreadDebris
) -> None:
    """Small bright DAPI specks (Gaussian blobs) on free background."""
    free_y, free_x = np.nonzero(~taken)
    count = int(integers(rng, params.count, 1)[0])
    if count == 0 or len(free_x) == 0:
        return
    picks = rng.integers(0, len(free_x), count)
    sigma = uniform(rng, params.sigma, count)
    peak = uniform(rng, params.intensity, count)
    height, width = taken.shape
    for x, y, s, p in zip(free_x[picks], free_y[picks], sigma, peak, strict=True):
        reach = math.ceil(3 * s)
        ys = np.arange(max(y - reach, 0), min(y + reach + 1, height))
        xs = np.arange(max(x - reach, 0), min(x + reach + 1, width))
        blob = np.exp(-((ys[:, None] - y) ** 2 + (xs[None, :] - x) ** 2) / (2 * s * s))
        image[DAPI, ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] += p * blob


def paint_spread(
    rng: np.random.Generator, paint: SpreadSettings
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """One spread: (3 x H x W image quantised to ``paint.bit_depth`` (uint8 for 8, uint16
    otherwise), H x W int32 instance labels (0 background; chromosomes only, not
    nuclei/debris), one row per chromosome instance).
    (Over 80 lines: the painting order (karyotype, translocations, rods, placement, brightness,
    rendering, nuclei and debris, masks, instance table) reads top to bottom with one shared
    generator.)"""
    height, width = paint.size
    colours = paint_of(paint)
    scale = float(uniform(rng, paint.length, 1)[0])
    base_width = float(uniform(rng, paint.width, 1)[0])
    intensity = float(uniform(rng, paint.intensity, 1)[0])
    paint_level = uniform(rng, paint.paint_intensity, 2)
    numbers = karyotype(rng, paint)
    count = len(numbers)
    lengths = (
        scale * RELATIVE_LENGTH[numbers - 1] * (1 + paint.length_jitter * rng.uniform(-1, 1, count))
    )
    # the shortest chromosomes condense into near-round blobs, never wider than long
    widths = np.minimum(base_width * rng.uniform(0.9, 1.1, count), 0.8 * lengths)
    chromosomes = [
        Chromosome(
            int(n),
            [Piece(int(n), 0.0, 1.0, float(length))],
            float(CENTROMERE_INDEX[n - 1] * length),
            float(w),
        )
        for n, length, w in zip(numbers, lengths, widths, strict=True)
    ]
    chromosomes = _translocate(rng, chromosomes, paint)
    order = rng.permutation(count)
    chromosomes = [chromosomes[i] for i in order]

    rods = []
    for chrom in chromosomes:
        style = {
            "bend": float(uniform(rng, paint.bend, 1)[0]),
            # drawn only when kinks are on, so other settings paint the same bytes
            "kink": (
                float(uniform(rng, paint.kink_angle, 1)[0])
                if paint.kink and rng.random() < paint.kink
                else 0.0
            ),
            "constriction": float(uniform(rng, paint.constriction, 1)[0]),
            "banding": float(uniform(rng, paint.banding, 1)[0]),
            "chromatids": float(uniform(rng, paint.chromatids, 1)[0]),
            "intensity": intensity,
        }
        rods.append(_render(rng, chrom, colours, style, paint_level))
    canvas = _Canvas(height, width)
    corners = _place(rng, canvas, rods, paint, scale)

    centres = np.array(
        [np.asarray(corner) + rod.centre for rod, corner in zip(rods, corners, strict=True)]
    )
    brightness = _brightness(rng, centres, paint.brightness)
    image = np.zeros((3, height, width), np.float32)
    touching = []
    for rod, corner, factor in zip(rods, corners, brightness, strict=True):
        window = canvas.window(corner, rod.mask.shape[0])
        rod.signal[2] *= factor
        image[(slice(None), *window)] += rod.signal
        grown = cv2.dilate(rod.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        touching.append(bool((canvas.cover[window][grown] > rod.mask[grown]).any()))
    taken = canvas.cover > 0
    nucleus_mask = _add_nuclei(rng, image, taken, paint.nuclei)
    _add_debris(rng, image, taken | nucleus_mask, paint.debris)
    images = image[None]
    apply_optics(rng, images, (taken | nucleus_mask)[None], paint.realism, paint.warp)
    labels = canvas.labels
    if paint.crossing_mask == "neither":
        labels[canvas.cover > 1] = 0
    area = np.bincount(labels.ravel(), minlength=count + 1)[1:]

    rows = []
    for index, (chrom, rod, corner) in enumerate(zip(chromosomes, rods, corners, strict=True)):
        segments = [colours[piece.chromosome] for piece in chrom.pieces]
        rows.append(
            {
                "instance": index + 1,
                "chromosome": chrom.number,
                "partner": chrom.partner,
                "exchange": chrom.exchange,
                "paint": colours[chrom.number],
                "segments": "|".join(segments),
                "segment_chromosomes": "|".join(str(piece.chromosome) for piece in chrom.pieces),
                "segment_lengths": "|".join(f"{piece.length:.1f}" for piece in chrom.pieces),
                "centromere": round(chrom.centromere, 1),
                "is_aberration": chrom.exchange > 0,
                "visible_colour_change": len(set(segments)) > 1,
                "length": round(chrom.length, 1),
                "width": round(chrom.width, 1),
                "centre_x": round(float(corner[0] + rod.centre[0]), 1),
                "centre_y": round(float(corner[1] + rod.centre[1]), 1),
                "angle": round(rod.angle, 1),
                "area": int(area[index]),
                "touching": touching[index],
            }
        )
    channels = [CHROM_CHANNELS.index(name) for name in ("red", "green", "dapi")]
    output = np.empty_like(images[0])
    output[channels] = images[0]
    return quantise(output, paint.bit_depth), labels, pd.DataFrame(rows)


def paint_spreads(
    paint: SpreadSettings,
    split: str,
    n: int,
    seed: int,
    outdir: str | Path,
    sheet: str | Path,
    instances: str | Path,
    annotated: bool = True,
) -> pd.DataFrame:
    """Paint n spreads of one split into outdir ({split}_{i:03d}.tif + .mask.tif), a sample
    sheet TSV and an instance table Parquet; all written atomically; returns the table.

    With ``annotated`` False no masks are written and the sheet's ``mask`` column is empty
    (labels withheld), but the instance table is still written as truth kept apart.
    """
    outdir, sheet = Path(outdir), Path(sheet)
    names = [f"{split}_{i:03d}" for i in range(n)]
    per_spread = 2 if annotated else 1
    paths = [
        outdir / f"{name}{suffix}"
        for name in names
        for suffix in (".tif", ".mask.tif")[:per_spread]
    ]
    rows, tables = [], []
    with atomic_outputs(*paths, sheet, instances) as temps:
        for index, name in enumerate(
            progress_bar(names, desc=f"paint {split} spreads", unit="spread")
        ):
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            image, labels, table = paint_spread(rng, paint)
            write_image(temps[per_spread * index], image, CHROM_CHANNELS)
            mask = ""
            if annotated:
                write_image(temps[per_spread * index + 1], labels.astype(np.uint16))
                mask = os.path.relpath(outdir / f"{name}.mask.tif", sheet.parent)
            table.insert(0, "spread", name)
            tables.append(table)
            rows.append(
                {
                    "sample": name,
                    "image": os.path.relpath(outdir / f"{name}.tif", sheet.parent),
                    "mask": mask,
                    **{channel: CHROM_CHANNELS.index(channel) for channel in CHROM_CHANNELS},
                }
            )
            log.info(
                "%s: %d chromosomes, %d aberrant", name, len(table), table["is_aberration"].sum()
            )
        pd.DataFrame(rows).to_csv(temps[-2], sep="\t", index=False)
        result = pd.concat(tables, ignore_index=True)
        result.to_parquet(temps[-1], index=False)
    return result
