"""Uniform-manifold filter of synthetic crops (Tallon et al.): UMAP of the classifier's
features fit on real crops, a 2-component Gaussian mixture on the real aberrations'
coordinates, and a synthetic sample is kept when it lies inside a component's confidence
ellipse. Also the max-SSIM-to-real quality check and the report figures.

About 440 lines: the filter (settings, fit, place), the stage that writes its outputs and
its two figures are one method; a quarter of the lines are numpydoc."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

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
from fishline.schema import default

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


@dataclass(frozen=True)
class FilterSettings:
    """Settings of the UMAP + mixture filter (config block ``chromosomes.filter``).

    Parameters
    ----------
    n_neighbors, min_dist : int, float, optional
        UMAP's neighbours and minimum distance (2-D map, euclidean).
    components : int, optional
        Gaussian-mixture components on the real aberrations' UMAP coordinates.
    rule : str, optional
        Ellipse level of component k: ``weight`` = its mixture weight (the paper),
        ``fixed`` = ``level``.
    level : float, optional
        The fixed rule's confidence level.
    ssim_references : int, optional
        Real training crops compared in the max-SSIM check.

    Every default is the schema's (``chromosomes.filter``).
    """

    n_neighbors: int = default("chromosomes.filter.n_neighbors")
    min_dist: float = default("chromosomes.filter.min_dist")
    components: int = default("chromosomes.filter.components")
    rule: str = default("chromosomes.filter.rule")
    level: float = default("chromosomes.filter.level")
    ssim_references: int = default("chromosomes.filter.ssim_references")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> FilterSettings:
        """The settings of a validated ``chromosomes.filter`` block (its other keys, such
        as ``features_from``, belong to the workflow)."""
        return cls(**{field.name: block[field.name] for field in fields(cls)})


@dataclass
class MixtureFilter:
    """A UMAP map fit on real crops' features and a Gaussian mixture on the real
    aberrations in it; a synthetic crop passes when it lands inside a component's ellipse.

    Build one with :meth:`fit`; :meth:`place` then scores any number of feature vectors.
    """

    reducer: Any  # umap.UMAP, fit
    mixture: GaussianMixture
    levels: dict[str, np.ndarray]  # ellipse level per component, for each rule
    rule: str
    real: pd.DataFrame  # the real crops' rows with umap_x, umap_y

    @classmethod
    def fit(
        cls,
        real: pd.DataFrame,
        settings: FilterSettings,
        seed: int,
        where: str = "real features",
    ) -> MixtureFilter:
        """Fit the map on the ``normal`` and ``aberration`` rows of ``real`` (columns
        ``label`` and ``features``, one vector each) and the mixture on its aberrations.

        Parameters
        ----------
        real : pandas.DataFrame
            Real crops' features; rows of other labels are left out.
        settings : FilterSettings
            UMAP and mixture settings.
        seed : int
            Seed of UMAP and of the mixture.
        where : str, optional
            What ``real`` was read from, named in errors.

        Returns
        -------
        MixtureFilter
            The fitted filter.

        Raises
        ------
        InputError
            If there is no real aberration, or too few for the mixture.
        """
        umap = import_cached("umap")
        real = real[real["label"].isin(["normal", "aberration"])].reset_index(drop=True)
        if not (real["label"] == "aberration").any():
            raise InputError(where, "no real aberration crops (empty class)", item="label")
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(settings.n_neighbors, len(real) - 1),
            min_dist=settings.min_dist,
            metric="euclidean",
            random_state=seed,
        )
        log.info("fitting UMAP on %d real crops", len(real))
        xy = reducer.fit_transform(np.stack(real["features"].to_numpy()))
        real = real.drop(columns="features").assign(umap_x=xy[:, 0], umap_y=xy[:, 1])
        mixture = fit_mixture(
            xy[(real["label"] == "aberration").to_numpy()], settings.components, seed, where
        )
        levels = {
            rule: component_levels(mixture.weights_, rule, settings.level)
            for rule in ("weight", "fixed")
        }
        return cls(reducer, mixture, levels, settings.rule, real)

    def place(self, vectors: np.ndarray) -> pd.DataFrame:
        """Map (n, d) feature vectors and test them against the ellipses.

        Returns
        -------
        pandas.DataFrame
            n rows: ``umap_x``, ``umap_y``, ``inside_weight`` and ``inside_fixed`` (inside
            an ellipse under each rule) and ``kept`` (under the settings' rule).
        """
        xy = self.reducer.transform(vectors) if len(vectors) else np.zeros((0, 2))
        inside = {rule: inside_ellipses(xy, self.mixture, lv) for rule, lv in self.levels.items()}
        return pd.DataFrame(
            {
                "umap_x": xy[:, 0],
                "umap_y": xy[:, 1],
                "inside_weight": inside["weight"],
                "inside_fixed": inside["fixed"],
                "kept": inside[self.rule],
            }
        )

    def real_aberrations_inside(self) -> dict[str, float]:
        """Fraction of the real aberrations inside the ellipses, per rule."""
        aberrant = self.real.loc[self.real["label"] == "aberration", ["umap_x", "umap_y"]]
        return {
            rule: float(inside_ellipses(aberrant.to_numpy(), self.mixture, lv).mean())
            for rule, lv in self.levels.items()
        }


class SyntheticSet(NamedTuple):
    """One generator's crops on disk: features (parquet), image stack (TIFF) and table."""

    features: str | Path
    stack: str | Path
    table: str | Path


@dataclass(frozen=True)
class FilterOutputs:
    """Where :func:`umap_filter` writes: kept flags per generator (parquet), all UMAP
    coordinates (parquet), the summary (TSV and HTML) and the two figures (PNG)."""

    kept: Mapping[str, str | Path]
    coordinates: str | Path
    summary: str | Path
    summary_html: str | Path
    umap_figure: str | Path
    ssim_figure: str | Path


def umap_filter(
    real_features: str | Path,
    real_train: tuple[str | Path, str | Path],
    synthetic: Mapping[str, SyntheticSet],
    settings: FilterSettings,
    seed: int,
    outputs: FilterOutputs,
    threads: int = 1,
) -> pd.DataFrame:
    """Fit the filter (:class:`MixtureFilter`) on the real crops' features, place each
    generator's samples in it, check their max SSIM to real training crops, and write the
    kept flags, the coordinates, the summary and the report figures.

    Parameters
    ----------
    real_features : str or pathlib.Path
        Parquet of the real train crops' features (``label``, ``features``).
    real_train : (str or pathlib.Path, str or pathlib.Path)
        The real train crops' image stack and table (the SSIM references).
    synthetic : Mapping of str to SyntheticSet
        Generator name -> its crops; the features must index the crops' table.
    settings : FilterSettings
        The filter's settings.
    seed : int
        Seed of UMAP and of the mixture.
    outputs : FilterOutputs
        Output paths; every generator of ``synthetic`` needs its ``kept`` path.
    threads : int, optional
        Numba threads for UMAP.

    Returns
    -------
    pandas.DataFrame
        The summary: one row per generator with samples, kept and kept fractions under
        both rules, the real aberrations inside, and the median max SSIM.
    """
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    chosen = MixtureFilter.fit(pd.read_parquet(real_features), settings, seed, str(real_features))
    real_inside = chosen.real_aberrations_inside()
    train_images, train_table = read_patch_set(*real_train)
    labelled = train_table["label"].isin(["normal", "aberration"]).to_numpy()
    references = train_images[labelled][: settings.ssim_references]
    full_scale = float(np.iinfo(train_images.dtype).max)
    frames = [chosen.real.assign(source="real")]
    summary, ssim_frames = [], []
    for name, files in synthetic.items():
        synth = pd.read_parquet(files.features)
        images, table = read_patch_set(files.stack, files.table)
        if len(table) != len(synth) or not np.array_equal(table["index"], synth["index"]):
            raise InputError(
                str(files.features), f"features do not index the crops of {files.stack}"
            )
        vectors = np.stack(synth["features"].to_numpy()) if len(synth) else np.zeros((0, 0))
        placed = chosen.place(vectors)
        ssim = max_ssim(images, references, full_scale) if len(images) else np.zeros(0)
        out = placed.assign(max_ssim=ssim)
        out.insert(0, "index", synth["index"].to_numpy())
        kept = out["kept"].to_numpy()
        with atomic_outputs(outputs.kept[name]) as (temp,):
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
                "kept_fraction_weight_rule": float(out["inside_weight"].mean())
                if len(out)
                else 0.0,
                "kept_fraction_fixed_level": float(out["inside_fixed"].mean()) if len(out) else 0.0,
                "real_aberrations_inside_weight_rule": real_inside["weight"],
                "real_aberrations_inside_fixed_level": real_inside["fixed"],
                "median_max_ssim": float(np.median(ssim)) if len(ssim) else float("nan"),
                "paper_kept_fraction": PAPER_KEPT if name == "bbdm" else float("nan"),
            }
        )
        log.info("%s: kept %d of %d (%s rule)", name, int(kept.sum()), len(out), settings.rule)
    coordinates = pd.concat(frames, ignore_index=True)
    table = pd.DataFrame(summary)
    levels = chosen.levels[settings.rule]
    components = ", ".join(
        f"w={w:.2f} p={p:.2f}" for w, p in zip(chosen.mixture.weights_, levels, strict=True)
    )
    with atomic_outputs(outputs.coordinates, outputs.summary, outputs.summary_html) as (c, s, h):
        coordinates.to_parquet(c, index=False)
        table.to_csv(s, sep="\t", index=False)
        Path(h).write_text(
            f"<p>Filter rule: {settings.rule} (fixed level {settings.level}); "
            f"mixture components: {components}. Paper: 24619 of 31507 BBDM samples kept "
            f"(78%).</p>\n" + table.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        )
    _umap_plot(coordinates, chosen.mixture, levels, settings.rule, outputs.umap_figure)
    half = len(references) // 2  # real vs other real crops (a crop to itself would be 1)
    real_ssim = (
        max_ssim(references[:half][:200], references[half:], full_scale) if half else np.zeros(0)
    )
    _ssim_plot(ssim_frames, real_ssim, outputs.ssim_figure)
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
