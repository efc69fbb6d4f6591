"""Statistics of a metaphase spread that decide how hard it is to segment, measured the same
way on real and painted spreads so the painter can be calibrated against real ones.

Intensities are given in units of the spread's chromosome signal (median DAPI inside the
chromosomes minus the background level), so 8-bit real images and painted images of any bit
depth compare directly. Lengths are in pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.graph import MCP_Geometric
from skimage.morphology import skeletonize

from fishline.images import read_file
from fishline.instances import otsu_foreground
from fishline.logging import progress_bar
from fishline.metaphase_sheet import load_row, read_sheet

# Per-spread statistics, in the order tables show them, with what each measures.
STATISTICS = {
    "chromosomes": "chromosome instances per spread",
    "width_px": "chromosome width: twice the median distance to the edge along the skeleton",
    "length_px": "chromosome length: skeleton length plus one width",
    "area_px": "chromosome area",
    "elongation": "length / width of a chromosome (how condensed the spread is)",
    "background": "background level / chromosome level",
    "brightness": "brightness between chromosomes (90th / 10th percentile of their median level)",
    "edge_px": "edge width: signal / median gradient magnitude on the mask edge (blur)",
    "banding": "intensity spread along the skeleton (std / signal)",
    "across": "centre-to-edge fall across a chromosome (1 - edge level / centre level)",
    "noise": "pixel noise in the background (robust std of a 2 px high-pass / signal)",
    "texture": "background unevenness (std of the background smoothed at 8 px / signal)",
    "glow": "light around objects: background 0.3 object diameters out above the far one / signal",
    "straightness": "end-to-end distance / axis length (median, longer half of the chromosomes)",
    "folded": "share of the longer half of the chromosomes under 0.8 straight (folded or hooked)",
    "touching": "fraction of chromosomes touching another one",
    "overlap": "fraction of chromosome pixels where two chromosomes overlap",
    "nuclei": "interphase nuclei per spread (bright objects over 8x a chromosome, unlabelled)",
    "debris": "debris per spread (unlabelled objects under half a chromosome)",
}
GLOW_AT = 0.3  # object diameters from the nearest stained object where glow is read


def _instance_shape(mask: np.ndarray, distance: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(width, length, skeleton pixels) of one instance's mask."""
    skeleton = skeletonize(mask)
    if not skeleton.any():
        skeleton = mask & (distance == distance[mask].max())
    width = 2.0 * float(np.median(distance[skeleton]))
    return width, float(skeleton.sum()) + width, skeleton


def _straightness(skeleton: np.ndarray) -> float:
    """End-to-end distance over length of a skeleton's longest path (1 = straight; NaN
    under 10 px long): its ends found by two farthest-point passes along the skeleton."""
    points = np.argwhere(skeleton)
    if len(points) < 2:
        return float("nan")
    costs = np.where(skeleton, 1.0, np.inf)

    def farthest(origin: tuple[int, ...]) -> tuple[tuple[int, ...], float]:
        reach, _ = MCP_Geometric(costs).find_costs([origin])
        reach[~skeleton] = -1.0
        end = np.unravel_index(int(np.argmax(reach)), reach.shape)
        return tuple(int(i) for i in end), float(reach[end])

    one_end, _ = farthest(tuple(int(i) for i in points[0]))
    other_end, length = farthest(one_end)
    if length < 10:
        return float("nan")
    return float(np.hypot(*np.subtract(one_end, other_end))) / length


def spread_statistics(
    dapi: np.ndarray, labels: np.ndarray, overlap: np.ndarray | None = None
) -> tuple[dict[str, float], pd.DataFrame]:
    """Statistics of one spread: per-spread values (keys of ``STATISTICS``; per-chromosome
    ones as medians) and one row per chromosome instance.

    ``labels`` holds one id per chromosome (0 elsewhere, nuclei and debris included);
    ``overlap`` marks pixels where chromosomes overlap, when the truth records them.
    """
    dapi = dapi.astype(np.float32)
    chromosomes = labels > 0
    stained = otsu_foreground(dapi).astype(bool) | chromosomes
    background_pixels = ~cv2.dilate(stained.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(
        bool
    )
    if not background_pixels.any():
        background_pixels = ~stained
    background = float(np.median(dapi[background_pixels]))
    level = float(np.median(dapi[chromosomes])) if chromosomes.any() else background
    signal = max(level - background, 1e-6)

    smooth = cv2.GaussianBlur(dapi, (0, 0), 1.0)
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    gradient /= 8.0  # Sobel's 3x3 kernels weigh the central difference by 8 (4 x 2 px)
    high_pass = dapi - cv2.GaussianBlur(dapi, (0, 0), 2.0)
    noise = 1.4826 * float(np.median(np.abs(high_pass[background_pixels])))
    texture = float(np.std(cv2.GaussianBlur(dapi, (0, 0), 8.0)[background_pixels]))

    crossing = np.zeros_like(chromosomes) if overlap is None else overlap.astype(bool)
    table = _chromosome_rows(dapi, labels, crossing, gradient, background, signal)
    median_area = float(table["area_px"].median()) if len(table) else 0.0
    nuclei, debris = _unlabelled_objects(stained, chromosomes, median_area)
    diameter = 2.0 * np.sqrt(median_area / np.pi)
    values = {
        "chromosomes": float(len(table)),
        "background": background / level if level > 0 else float("nan"),
        "brightness": _percentile_ratio(table["level"]) if len(table) else float("nan"),
        "noise": noise / signal,
        "texture": texture / signal,
        "glow": _glow(dapi, stained, diameter) / signal,
        "overlap": float(overlap.sum() / max(chromosomes.sum() + overlap.sum(), 1))
        if overlap is not None
        else float("nan"),
        "nuclei": float(nuclei),
        "debris": float(debris),
    }
    for name in ("width_px", "length_px", "area_px", "elongation", "edge_px", "banding", "across"):
        values[name] = float(table[name].median()) if len(table) else float("nan")
    values["touching"] = float(table["touching"].mean()) if len(table) else float("nan")
    longer = (
        table.loc[table["area_px"] >= median_area, "straightness"].dropna().to_numpy()
        if len(table)
        else np.array([])
    )
    values["straightness"] = float(np.median(longer)) if len(longer) else float("nan")
    values["folded"] = float(np.mean(longer < 0.8)) if len(longer) else float("nan")
    return {name: values[name] for name in STATISTICS}, table


def _glow(dapi: np.ndarray, stained: np.ndarray, diameter: float) -> float:
    """Median background ``GLOW_AT`` diameters (+-1 px) from the nearest stained object,
    above the background beyond twice that: the light scattered around objects, which a
    Gaussian blur of the objects' edges does not paint. NaN where either ring is empty."""
    if not diameter:
        return float("nan")
    distance = ndimage.distance_transform_edt(~stained)
    ring = np.abs(distance - GLOW_AT * diameter) <= 1
    far = distance > 2 * GLOW_AT * diameter
    if not ring.any() or not far.any():
        return float("nan")
    return float(np.median(dapi[ring]) - np.median(dapi[far]))


def _chromosome_rows(
    dapi: np.ndarray,
    labels: np.ndarray,
    crossing: np.ndarray,
    gradient: np.ndarray,
    background: float,
    signal: float,
) -> pd.DataFrame:
    """One row per chromosome instance of ``labels`` (under 4 px skipped): its shape, and its
    intensities in units of the spread's chromosome ``signal`` above ``background``."""
    rows = []
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        padded = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in window)
        mask = labels[padded] == index
        area = int(mask.sum())
        if area < 4:
            continue
        distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        width, length, skeleton = _instance_shape(mask, distance)
        pixels = dapi[padded]
        along = pixels[skeleton]
        edge = mask & (distance <= 1.0)
        centre = pixels[mask & (distance >= distance[mask].max() - 0.5)]
        rows.append(
            {
                "instance": index,
                "width_px": width,
                "length_px": length,
                "area_px": area,
                "elongation": length / width if width > 0 else float("nan"),
                "level": (float(np.median(pixels[mask])) - background) / signal,
                "edge_px": signal / max(float(np.median(gradient[padded][edge])), 1e-6),
                "banding": float(np.std(along)) / signal,
                "across": 1.0
                - (float(np.median(pixels[edge])) - background)
                / max(float(np.median(centre)) - background, 1e-6),
                "straightness": _straightness(skeleton),
                "touching": _touches(labels[padded], crossing[padded], index),
            }
        )
    return pd.DataFrame(rows)


def _percentile_ratio(levels: pd.Series) -> float:
    """90th over 10th percentile of positive levels (NaN when the 10th is not above 0)."""
    low, high = np.percentile(levels, [10, 90])
    return float(high / low) if low > 0 else float("nan")


def _touches(labels: np.ndarray, crossing: np.ndarray, index: int) -> bool:
    """Whether instance ``index`` has another instance, or an overlap, within one pixel."""
    mask = (labels == index).astype(np.uint8)
    ring = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool) & ~mask.astype(bool)
    others = labels[ring]
    return bool(((others > 0) & (others != index)).any() or crossing[ring].any())


def _unlabelled_objects(
    stained: np.ndarray, chromosomes: np.ndarray, median_area: float
) -> tuple[int, int]:
    """(nuclei, debris): stained components mostly outside the chromosome labels, over 8x
    or under half the median chromosome area."""
    count, components, stats, _ = cv2.connectedComponentsWithStats(
        stained.astype(np.uint8), connectivity=8
    )
    if count <= 1 or median_area <= 0:
        return 0, 0
    labelled = np.bincount(components[chromosomes], minlength=count)
    areas = stats[:, cv2.CC_STAT_AREA]
    free = labelled[1:] < 0.2 * areas[1:]
    nuclei = int((free & (areas[1:] > 8 * median_area)).sum())
    debris = int((free & (areas[1:] >= 4) & (areas[1:] < 0.5 * median_area)).sum())
    return nuclei, debris


def measure_sheet(sheet: str | Path, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Statistics of every spread with truth in a metaphase sheet: one row per spread and one
    per chromosome, both tagged with ``source``. Overlap comes from the label image's
    ``mask_ignore`` value (e.g. 255 in karyotype images) where the sheet gives one."""
    spreads, chromosomes = [], []
    rows = [row for row in read_sheet(sheet).to_dict("records") if isinstance(row.get("mask"), str)]
    for row in progress_bar(rows, desc=f"measure {source}", unit="spread"):
        item = load_row(row, sheet)
        overlap = None
        if pd.notna(row.get("mask_ignore")):
            overlap = read_file(row["mask"])[0] == int(row["mask_ignore"])
        values, table = spread_statistics(item.dapi, item.truth, overlap)
        spreads.append({"source": source, "spread": item.sample, **values})
        chromosomes.append(table.assign(source=source, spread=item.sample))
    return pd.DataFrame(spreads), pd.concat(chromosomes, ignore_index=True)


def side_by_side(
    spreads: pd.DataFrame, real: str = "real", painted: str = "painted"
) -> pd.DataFrame:
    """One row per statistic: median [quartiles] over the spreads of each source, and the
    painted median over the real one."""
    rows = []
    for name, meaning in STATISTICS.items():
        quartiles = {}
        for source in (real, painted):
            values = spreads.loc[spreads["source"] == source, name].dropna()
            quartiles[source] = (
                values.quantile([0.25, 0.5, 0.75]).to_numpy() if len(values) else [np.nan] * 3
            )
        rows.append(
            {
                "statistic": name,
                real: _quartile_text(quartiles[real]),
                painted: _quartile_text(quartiles[painted]),
                "painted / real": quartiles[painted][1] / quartiles[real][1]
                if quartiles[real][1]
                else np.nan,
                "what": meaning,
            }
        )
    return pd.DataFrame(rows)


def _quartile_text(quartiles: np.ndarray) -> str:
    return f"{quartiles[1]:.3g} [{quartiles[0]:.3g}, {quartiles[2]:.3g}]"
