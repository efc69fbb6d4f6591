"""Uniform-manifold filter of synthetic crops (Tallon et al.): UMAP of the classifier's
features fit on real crops, a 2-component Gaussian mixture on the real aberrations'
coordinates, and a synthetic sample is kept when it lies inside a component's confidence
ellipse. Also the max-SSIM-to-real quality check and the report figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.patches import Ellipse
from sklearn.mixture import GaussianMixture

from fishline.errors import InputError
from fishline.io import atomic_outputs, read_patch_set
from fishline.jit import import_cached
from fishline.logging import get_logger
from fishline.plots import save_figure

log = get_logger("filter")
PAPER_KEPT = 24619 / 31507


def chi2_radius2(level: float) -> float:
    """Squared Mahalanobis radius of the ``level`` confidence ellipse (chi-square, 2 dof)."""
    return -2.0 * math.log(1.0 - level)


def component_levels(weights: np.ndarray, rule: str, level: float) -> np.ndarray:
    """Confidence level per component: ``weight`` = its mixture weight (the paper's rule
    read as p_k = w_k), ``fixed`` = the same ``level`` for all."""
    if rule == "weight":
        return np.clip(np.asarray(weights, float), 1e-6, 1 - 1e-9)
    return np.full(len(weights), level)


def inside_ellipses(points: np.ndarray, gmm: GaussianMixture, levels: np.ndarray) -> np.ndarray:
    """Which points lie inside any component's ellipse at its level."""
    inside = np.zeros(len(points), bool)
    for k in range(gmm.n_components):
        diff = points - gmm.means_[k]
        d2 = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(gmm.covariances_[k]), diff)
        inside |= d2 <= chi2_radius2(float(levels[k]))
    return inside


def fit_mixture(points: np.ndarray, components: int, seed: int, where: str) -> GaussianMixture:
    """Full-covariance Gaussian mixture on the real aberrations' 2-D coordinates."""
    if len(points) <= components:
        raise InputError(
            where,
            f"{len(points)} real aberration crops; the {components}-component mixture needs more",
            item="aberration",
        )
    return GaussianMixture(components, covariance_type="full", random_state=seed).fit(points)


def _gaussian_band(length: int, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(length - size + 1, length) matrix whose rows hold the normalised Gaussian taps at
    each valid offset: M @ x @ M.T is x filtered by the 2-D window ('valid' borders)."""
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    band = torch.zeros(length - size + 1, length)
    for row in range(band.shape[0]):
        band[row, row : row + size] = taps / taps.sum()
    return band


def max_ssim(
    queries: np.ndarray, references: np.ndarray, full_scale: float, chunk: int = 256
) -> np.ndarray:
    """For each query crop, its highest SSIM (Gaussian window 11, sigma 1.5, channel mean)
    to any reference crop; computed batched in torch, the separable window applied as two
    banded matrix products (an order of magnitude faster than conv2d on CPU)."""
    if len(references) == 0:
        raise InputError("filter", "no real reference crops for the SSIM check")
    rows = _gaussian_band(references.shape[2])
    cols = _gaussian_band(references.shape[3]).T
    c1, c2 = 0.01**2, 0.03**2

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = rows @ x @ cols
        return mu, rows @ (x * x) @ cols - mu * mu

    ref = torch.from_numpy(references.astype(np.float32) / full_scale)
    ref_mu, ref_var = stats(ref)
    best = np.zeros(len(queries), np.float32)
    with torch.no_grad():
        for i, query in enumerate(queries):
            q = torch.from_numpy(query.astype(np.float32) / full_scale)[None]
            q_mu, q_var = stats(q)
            top = -1.0
            for start in range(0, len(ref), chunk):
                r, r_mu, r_var = (v[start : start + chunk] for v in (ref, ref_mu, ref_var))
                cov = rows @ (q * r) @ cols - q_mu * r_mu
                ssim = ((2 * q_mu * r_mu + c1) * (2 * cov + c2)) / (
                    (q_mu**2 + r_mu**2 + c1) * (q_var + r_var + c2)
                )
                top = max(top, float(ssim.mean(dim=(1, 2, 3)).max()))
            best[i] = top
    return best


def umap_filter(
    real_features: str | Path,
    synthetic_features: dict[str, str | Path],
    synthetic_sets: dict[str, tuple[str, str]],
    real_train: tuple[str, str],
    settings: dict[str, Any],
    seed: int,
    kept_paths: dict[str, str | Path],
    coordinates_path: str | Path,
    summary_path: str | Path,
    summary_html: str | Path,
    umap_figure: str | Path,
    ssim_figure: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Fit UMAP on the real crops' features, place each generator's samples in it, keep
    those inside the real aberrations' mixture ellipses; write kept ids and the report."""
    import numba

    umap = import_cached("umap")

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    real = pd.read_parquet(real_features)
    real = real[real["label"].isin(["normal", "aberration"])].reset_index(drop=True)
    if not (real["label"] == "aberration").any():
        raise InputError(str(real_features), "no real aberration crops (empty class)", item="label")
    features = np.stack(real["features"].to_numpy())
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(settings["n_neighbors"], len(real) - 1),
        min_dist=settings["min_dist"],
        metric="euclidean",
        random_state=seed,
    )
    log.info("fitting UMAP on %d real crops", len(real))
    real_xy = reducer.fit_transform(features)
    frames = [
        real.drop(columns="features").assign(
            source="real", umap_x=real_xy[:, 0], umap_y=real_xy[:, 1]
        )
    ]
    aberrant = real_xy[(real["label"] == "aberration").to_numpy()]
    gmm = fit_mixture(aberrant, settings["components"], seed, str(real_features))
    levels = {
        "weight": component_levels(gmm.weights_, "weight", settings["level"]),
        "fixed": component_levels(gmm.weights_, "fixed", settings["level"]),
    }
    real_inside = {rule: inside_ellipses(aberrant, gmm, lv) for rule, lv in levels.items()}
    train_images, train_table = read_patch_set(*real_train)
    labelled = train_table["label"].isin(["normal", "aberration"]).to_numpy()
    references = train_images[labelled][: settings["ssim_references"]]
    full_scale = float(np.iinfo(train_images.dtype).max)
    summary, ssim_frames = [], []
    for name, path in synthetic_features.items():
        synth = pd.read_parquet(path)
        xy = (
            reducer.transform(np.stack(synth["features"].to_numpy()))
            if len(synth)
            else np.zeros((0, 2))
        )
        flags = {rule: inside_ellipses(xy, gmm, lv) for rule, lv in levels.items()}
        kept = flags[settings["rule"]]
        images, table = read_patch_set(*synthetic_sets[name])
        if len(table) != len(synth) or not np.array_equal(table["index"], synth["index"]):
            raise InputError(
                str(path), f"features do not index the crops of {synthetic_sets[name][0]}"
            )
        ssim = max_ssim(images, references, full_scale) if len(images) else np.zeros(0)
        out = pd.DataFrame(
            {
                "index": synth["index"].to_numpy(),
                "umap_x": xy[:, 0],
                "umap_y": xy[:, 1],
                "inside_weight": flags["weight"],
                "inside_fixed": flags["fixed"],
                "kept": kept,
                "max_ssim": ssim,
            }
        )
        with atomic_outputs(kept_paths[name]) as (temp,):
            out.to_parquet(temp, index=False)
        frames.append(
            out.assign(source=name, label=np.where(kept, f"{name} kept", f"{name} rejected"))
        )
        ssim_frames.append(pd.DataFrame({"generator": name, "max_ssim": ssim}))
        summary.append(
            {
                "generator": name,
                "samples": len(out),
                "kept": int(kept.sum()),
                "kept_fraction": float(kept.mean()) if len(out) else 0.0,
                "kept_fraction_weight_rule": float(flags["weight"].mean()) if len(out) else 0.0,
                "kept_fraction_fixed_level": float(flags["fixed"].mean()) if len(out) else 0.0,
                "real_aberrations_inside_weight_rule": float(real_inside["weight"].mean()),
                "real_aberrations_inside_fixed_level": float(real_inside["fixed"].mean()),
                "median_max_ssim": float(np.median(ssim)) if len(ssim) else float("nan"),
                "paper_kept_fraction": PAPER_KEPT if name == "bbdm" else float("nan"),
            }
        )
        log.info("%s: kept %d of %d (%s rule)", name, int(kept.sum()), len(out), settings["rule"])
    coordinates = pd.concat(frames, ignore_index=True)
    table = pd.DataFrame(summary)
    components = ", ".join(
        f"w={w:.2f} p={p:.2f}" for w, p in zip(gmm.weights_, levels[settings["rule"]], strict=True)
    )
    with atomic_outputs(coordinates_path, summary_path, summary_html) as (c, s, h):
        coordinates.to_parquet(c, index=False)
        table.to_csv(s, sep="\t", index=False)
        Path(h).write_text(
            f"<p>Filter rule: {settings['rule']} (fixed level {settings['level']}); "
            f"mixture components: {components}. Paper: 24619 of 31507 BBDM samples kept "
            f"(78%).</p>\n" + table.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        )
    _umap_plot(coordinates, gmm, levels[settings["rule"]], settings["rule"], umap_figure)
    half = len(references) // 2  # real vs other real crops (a crop to itself would be 1)
    real_ssim = (
        max_ssim(references[:half][:200], references[half:], full_scale) if half else np.zeros(0)
    )
    _ssim_plot(ssim_frames, real_ssim, ssim_figure)
    return table


def _ellipse(ax: plt.Axes, mean: np.ndarray, cov: np.ndarray, level: float, colour: str) -> None:
    values, vectors = np.linalg.eigh(cov)
    radius = math.sqrt(chi2_radius2(level))
    angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
    width, height = 2 * radius * np.sqrt(values[::-1])
    ax.add_patch(
        Ellipse(mean, width, height, angle=angle, fill=False, edgecolor=colour, linewidth=1.5)
    )


def _umap_plot(
    coordinates: pd.DataFrame,
    gmm: GaussianMixture,
    levels: np.ndarray,
    rule: str,
    path: str | Path,
) -> None:
    sources = [s for s in coordinates["source"].unique() if s != "real"]
    figure, axes = plt.subplots(
        1, max(1, len(sources)), figsize=(6 * max(1, len(sources)), 5), squeeze=False
    )
    real = coordinates[coordinates["source"] == "real"]
    for ax, source in zip(axes[0], sources or ["real"], strict=False):
        synth = coordinates[coordinates["source"] == source]
        for label, colour, size in (
            (f"{source} rejected", "#bbbbbb", 6),
            (f"{source} kept", "#1a9641", 6),
        ):
            part = synth[synth["label"] == label]
            ax.scatter(part["umap_x"], part["umap_y"], s=size, c=colour, label=label, linewidths=0)
        for label, colour in (("normal", "#2b8cbe"), ("aberration", "#d7191c")):
            part = real[real["label"] == label]
            ax.scatter(
                part["umap_x"], part["umap_y"], s=8, c=colour, label=f"real {label}", linewidths=0
            )
        for k in range(gmm.n_components):
            _ellipse(ax, gmm.means_[k], gmm.covariances_[k], float(levels[k]), "black")
        ax.set(
            title=f"{source}: UMAP of classifier features ({rule} rule)",
            xlabel="UMAP 1",
            ylabel="UMAP 2",
        )
        ax.legend(fontsize=7, markerscale=2)
    save_figure(figure, path)


def _ssim_plot(frames: Sequence[pd.DataFrame], real: np.ndarray, path: str | Path) -> None:
    figure, ax = plt.subplots(figsize=(6, 4))
    data = pd.concat(
        [*frames, pd.DataFrame({"generator": "real (train, to others)", "max_ssim": real})],
        ignore_index=True,
    )
    for name, part in data.groupby("generator"):
        if part["max_ssim"].nunique() > 1:
            sns.kdeplot(part["max_ssim"], ax=ax, label=str(name), fill=True, alpha=0.3, cut=0)
        else:
            ax.axvline(float(part["max_ssim"].iloc[0]), label=str(name))
    ax.set(xlabel="max SSIM to the real training crops", ylabel="density")
    ax.legend(fontsize=8)
    save_figure(figure, path)
