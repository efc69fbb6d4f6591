"""UMAP of a classifier's 128-d representation: training data, test sets and OOD cells."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fishline import models
from fishline.fish.classifier import predict
from fishline.io import atomic_outputs
from fishline.jit import import_cached
from fishline.logging import get_logger
from fishline.plots import save_figure
from fishline.schema import default

log = get_logger("embedding")


def embed_sets(
    model_path: str,
    sets: dict[str, tuple[str, str]],
    fit_set: str,
    max_points: int,
    seed: int,
    device: str = default("device"),
    threads: int = 1,
) -> pd.DataFrame:
    """2-D UMAP coordinates of up to ``max_points`` cells per set, fit on ``fit_set``.

    The map is fit on the training representation only; the other sets are transformed
    into it, so an out-of-distribution set shows where the model puts unfamiliar cells.
    """
    import numba

    umap = import_cached("umap")

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    rng = np.random.default_rng(seed)
    loaded = models.load(model_path)
    frames = []
    for name, (stack, table) in sets.items():
        frame = predict(loaded, stack, table, device, threads, allow_unknown=True)
        keep = np.sort(rng.permutation(len(frame))[:max_points])
        frames.append(frame.iloc[keep].assign(set=name))
    cells = pd.concat(frames, ignore_index=True)
    features = np.stack(cells["representation"].to_numpy())
    fitted = cells["set"] == fit_set
    log.info("fitting UMAP on %d %s cells", int(fitted.sum()), fit_set)
    reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=15, min_dist=0.1)
    reducer.fit(features[fitted.to_numpy()])
    coordinates = reducer.transform(features)
    out = cells[["set", "index", "class_name", "predicted_class", "certainty"]].copy()
    out["umap_x"], out["umap_y"] = coordinates[:, 0], coordinates[:, 1]
    return out


def umap_figure(coordinates: pd.DataFrame, title: str, path: str | Path) -> None:
    """Two panels: cells coloured by set, and by true class (OOD cells in grey)."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    sns.scatterplot(
        data=coordinates, x="umap_x", y="umap_y", hue="set", s=8, linewidth=0, ax=axes[0]
    )
    sns.scatterplot(
        data=coordinates, x="umap_x", y="umap_y", hue="class_name", s=8, linewidth=0, ax=axes[1]
    )
    for ax, name in zip(axes, ("set", "true class"), strict=True):
        ax.set(title=f"{title}: by {name}", xlabel="UMAP 1", ylabel="UMAP 2")
        ax.legend(fontsize=7, markerscale=2)
    save_figure(figure, path)


def fish_umap(
    model_path: str,
    sets: Mapping[str, tuple[str, str]],
    max_points: int,
    seed: int,
    figure: str,
    table: str,
    device: str = default("device"),
    threads: int = 1,
) -> None:
    """Embed the sets (name -> patch stack and table; the map is fit on the first) with one
    model and write the figure and the coordinates."""
    sets = dict(sets)
    coordinates = embed_sets(model_path, sets, next(iter(sets)), max_points, seed, device, threads)
    umap_figure(coordinates, Path(model_path).stem, figure)
    with atomic_outputs(table) as (temp,):
        coordinates.to_parquet(temp, index=False)
