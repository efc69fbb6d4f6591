"""Similarity search on cached feature grids: heat maps, proposals (local maxima above a
threshold, at least a minimum distance apart) and hard/easy background candidates; and
per-cell calls of cell vectors from labelled prototypes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from fishline.errors import InputError
from fishline.schema import default
from fishline.simsearch.features import FeatureGrid
from fishline.uncertainty import certainty

PROPOSAL_COLUMNS = ["image", "x", "y", "score"]


def nearest_prototype(
    vectors: np.ndarray,
    prototypes: np.ndarray,
    labels: Sequence[str],
    temperature: float = default("simsearch.cells.temperature"),
) -> pd.DataFrame:
    """Per-cell calls from a handful of examples: classify (N, d) cell vectors (e.g.
    ``FeatureExtractor.embed`` of cell crops) by their (k, d) labelled ``prototypes``.

    A class's score is the highest cosine similarity to its prototypes; probabilities are
    the softmax of the scores / ``temperature``; certainty is 1 - normalised entropy (as for
    the FISH classifier, no smoothing floor).

    Parameters
    ----------
    vectors : numpy.ndarray
        (N, d) cell vectors, cast to float32; unit length, so dot products are cosines.
    prototypes : numpy.ndarray
        (k, d) labelled unit vectors, k >= 1, cast to float32.
    labels : sequence of str
        (k,) class of each prototype.
    temperature : float, optional
        Softmax temperature in cosine units (smaller: sharper probabilities); default: the
        schema's ``simsearch.cells.temperature``.

    Returns
    -------
    pandas.DataFrame
        One row per vector: ``predicted_class`` (the class with the highest score),
        ``certainty`` (float in [0, 1]) and ``p_<class>`` (probabilities) for each class in
        sorted order.

    Raises
    ------
    InputError
        If ``prototypes`` is not 2-D, is empty or does not match ``labels`` in length, or
        ``vectors`` is not (N, d) with the prototypes' d.

    Examples
    --------
    >>> vectors = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    >>> prototypes = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    >>> calls = nearest_prototype(vectors, prototypes, ["neg", "pos"])
    >>> calls["predicted_class"].tolist()
    ['neg', 'pos']
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    prototypes = np.asarray(prototypes, dtype=np.float32)
    labels = np.asarray(labels)
    if prototypes.ndim != 2 or len(prototypes) != len(labels) or not len(labels):
        raise InputError(
            "prototypes", f"{len(labels)} labels for prototypes of shape {prototypes.shape}"
        )
    if vectors.ndim != 2 or vectors.shape[1] != prototypes.shape[1]:
        raise InputError(
            "vectors", f"expected (N, {prototypes.shape[1]}) vectors, got shape {vectors.shape}"
        )
    classes = sorted(set(labels.tolist()))
    similarity = vectors @ prototypes.T
    scores = np.stack([similarity[:, labels == name].max(axis=1) for name in classes], axis=1)
    logits = scores / temperature
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    table = pd.DataFrame(
        {
            "predicted_class": np.asarray(classes)[scores.argmax(axis=1)],
            "certainty": certainty(probabilities, smoothing=0.0),
        }
    )
    for index, name in enumerate(classes):
        table[f"p_{name}"] = probabilities[:, index]
    return table


def similarity_map(grid: FeatureGrid, prototypes: np.ndarray) -> np.ndarray:
    """(gh, gw) float32: each window's highest cosine similarity to the (k, d) prototypes.

    Parameters
    ----------
    grid : FeatureGrid
        One image's (gh, gw, d) float32 unit window vectors.
    prototypes : numpy.ndarray
        (k, d) unit vectors, k >= 1, cast to float32.

    Returns
    -------
    numpy.ndarray
        (gh, gw) float32 cosine similarity in [-1, 1], on the grid's ``ys`` x ``xs`` centres.

    Raises
    ------
    InputError
        If ``prototypes`` is not (k >= 1, d) with the grid's d.
    """
    prototypes = np.asarray(prototypes, dtype=np.float32)
    if prototypes.ndim != 2 or prototypes.shape[1] != grid.vectors.shape[-1] or not len(prototypes):
        raise InputError(
            "prototypes",
            f"expected (k >= 1, {grid.vectors.shape[-1]}) vectors, got shape {prototypes.shape}",
        )
    gh, gw, d = grid.vectors.shape
    scores = grid.vectors.reshape(-1, d) @ prototypes.T
    return scores.max(axis=1).reshape(gh, gw)


def _ranked_peaks(grid: FeatureGrid, similarity: np.ndarray, min_distance: float) -> np.ndarray:
    """(n, 3) [x, y, score] of local maxima, best first, greedily thinned to ``min_distance``.

    Greedy thinning in score order keeps a peak only if no kept, higher peak lies closer than
    ``min_distance`` px; whether a peak survives depends only on higher peaks, so the
    proposals at any threshold are exactly the rows with score >= threshold.
    """
    radius = max(1, int(min_distance / grid.stride))
    offsets = np.arange(-radius, radius + 1)
    disk = np.hypot(offsets[:, None], offsets[None, :]) * grid.stride < min_distance
    disk[radius, radius] = True
    window = ndimage.maximum_filter(similarity, footprint=disk, mode="nearest")
    rows, columns = np.nonzero(similarity >= window)
    scores = similarity[rows, columns]
    order = np.argsort(-scores, kind="stable")
    xs = grid.xs[columns[order]].astype(np.float64)
    ys = grid.ys[rows[order]].astype(np.float64)
    scores = scores[order].astype(np.float64)
    keep = _thin(xs, ys, min_distance)
    return np.stack([xs[keep], ys[keep], scores[keep]], axis=1)


def _thin(
    xs: np.ndarray,
    ys: np.ndarray,
    distance: float,
    blocked: np.ndarray | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Indices of points kept in the given order, none closer than ``distance`` to a kept one
    (nor to the (m, 2) ``blocked`` points); stops after ``limit`` kept points."""
    kept: list[int] = []
    kept_xy = np.empty((0, 2))
    block = np.empty((0, 2)) if blocked is None else np.asarray(blocked, dtype=np.float64)
    for index in range(len(xs)):
        point = np.array([xs[index], ys[index]])
        if len(block) and np.min(np.hypot(*(block - point).T)) < distance:
            continue
        if len(kept_xy) and np.min(np.hypot(*(kept_xy - point).T)) < distance:
            continue
        kept.append(index)
        kept_xy = np.vstack([kept_xy, point])
        if limit is not None and len(kept) >= limit:
            break
    return np.asarray(kept, dtype=np.int64)


def propose(
    grid: FeatureGrid,
    similarity: np.ndarray,
    threshold: float,
    min_distance: float | None = None,
) -> pd.DataFrame:
    """Proposals [x, y, score]: local maxima of ``similarity`` >= ``threshold``, best first,
    at least ``min_distance`` px apart (default half the patch width).

    Parameters
    ----------
    grid : FeatureGrid
        The grid ``similarity`` was computed on (window centres ``xs``, ``ys``, ``stride``
        and ``patch`` in px).
    similarity : numpy.ndarray
        (gh, gw) float similarity map, as :func:`similarity_map` gives.
    threshold : float
        Least score (cosine similarity) of a proposal.
    min_distance : float or None, optional
        Least distance between proposals, px; None: half the patch width.

    Returns
    -------
    pandas.DataFrame
        One row per proposal, best first: x, y (window centre, px, float64) and score
        (float64).
    """
    distance = grid.patch[1] / 2 if min_distance is None else float(min_distance)
    peaks = _ranked_peaks(grid, similarity, distance)
    peaks = peaks[peaks[:, 2] >= threshold]
    return pd.DataFrame({"x": peaks[:, 0], "y": peaks[:, 1], "score": peaks[:, 2]})


class Searcher:
    """Proposals over many images from cached grids.

    Similarity maps and their ranked peaks are cached per prototype set (keyed by the
    vectors' bytes), so moving the threshold only filters a sorted table (milliseconds).
    ``min_distance`` (px) between proposals defaults to half the patch width.

    Parameters
    ----------
    grids : dict of str to FeatureGrid
        Each image's name and its cached window vectors.
    min_distance : float or None, optional
        Least distance between proposals of one image, px; None: half each grid's patch
        width.
    """

    def __init__(self, grids: dict[str, FeatureGrid], min_distance: float | None = None) -> None:
        self.grids = grids
        self.min_distance = min_distance
        self._peaks: dict[str, pd.DataFrame] = {}

    def _key(self, prototypes: np.ndarray) -> str:
        array = np.ascontiguousarray(prototypes, dtype=np.float32)
        return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()

    def peaks(self, prototypes: np.ndarray) -> pd.DataFrame:
        """Every ranked peak [image, x, y, score] of every image (cached), best first.

        Parameters
        ----------
        prototypes : numpy.ndarray
            (k, d) unit prototype vectors, k >= 1.

        Returns
        -------
        pandas.DataFrame
            Columns image (name), x, y (px) and score (cosine similarity), sorted by score
            descending; the cached table itself, so do not modify it.

        Raises
        ------
        InputError
            If ``prototypes`` is not (k >= 1, d) with the grids' d.
        """
        key = self._key(prototypes)
        if key not in self._peaks:
            frames = []
            for name, grid in self.grids.items():
                distance = grid.patch[1] / 2 if self.min_distance is None else self.min_distance
                peaks = _ranked_peaks(grid, similarity_map(grid, prototypes), distance)
                frames.append(
                    pd.DataFrame(
                        {"image": name, "x": peaks[:, 0], "y": peaks[:, 1], "score": peaks[:, 2]}
                    )
                )
            table = pd.concat(frames, ignore_index=True) if frames else _empty()
            self._peaks[key] = table.sort_values("score", ascending=False, kind="stable")
        return self._peaks[key]

    def proposals(self, prototypes: np.ndarray, threshold: float) -> pd.DataFrame:
        """Proposals [image, x, y, score] with score >= ``threshold``, best first.

        Parameters
        ----------
        prototypes : numpy.ndarray
            (k, d) unit prototype vectors, k >= 1.
        threshold : float
            Least score (cosine similarity) of a proposal.

        Returns
        -------
        pandas.DataFrame
            Columns image, x, y (px) and score, sorted by score descending, index 0..n-1.

        Raises
        ------
        InputError
            If ``prototypes`` is not (k >= 1, d) with the grids' d.
        """
        table = self.peaks(prototypes)
        return table[table["score"] >= threshold].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"image": pd.Series(dtype=str), "x": [], "y": [], "score": []})


def background_candidates(
    grids: dict[str, FeatureGrid],
    mean_vector: np.ndarray,
    exclude: pd.DataFrame,
    count: int,
    radius: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hard, easy) background windows [image, x, y, score]: the ``count`` windows most and
    least similar to the mean prototype vector, at least ``radius`` px from every ``exclude``
    point [image, x, y] and from each other.

    ``seed`` breaks ties between equal scores (a random order before the stable sort), so
    flat regions do not always give their top-left windows.

    Parameters
    ----------
    grids : dict of str to FeatureGrid
        Each image's name and its (gh, gw, d) unit window vectors.
    mean_vector : numpy.ndarray
        (d,) mean prototype vector (flattened, normalised here).
    exclude : pandas.DataFrame
        Points [image, x, y] (px) no candidate may come within ``radius`` of, e.g. the
        prototypes and proposals.
    count : int
        Windows wanted in each table.
    radius : float
        Least distance, px, from the ``exclude`` points and between candidates of one image.
    seed : int
        Seed of the tie-breaking shuffle.

    Returns
    -------
    hard : pandas.DataFrame
        Up to ``count`` rows [image, x, y, score], score (cosine to the mean vector)
        descending.
    easy : pandas.DataFrame
        Up to ``count`` rows [image, x, y, score], score ascending.

    Raises
    ------
    InputError
        If ``mean_vector`` is all zeros.
    """
    mean_vector = np.asarray(mean_vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(mean_vector))
    if norm == 0:
        raise InputError("mean_vector", "the mean prototype vector is zero")
    mean_vector = mean_vector / norm
    rng = np.random.default_rng(seed)
    names, xs, ys, scores = [], [], [], []
    for index, grid in enumerate(grids.values()):
        score = grid.vectors @ mean_vector
        gx, gy = np.meshgrid(grid.xs, grid.ys)
        names.append(np.full(score.size, index))
        xs.append(gx.ravel())
        ys.append(gy.ravel())
        scores.append(score.ravel())
    image_of = np.concatenate(names)
    x_all = np.concatenate(xs).astype(np.float64)
    y_all = np.concatenate(ys).astype(np.float64)
    score_all = np.concatenate(scores).astype(np.float64)
    shuffle = rng.permutation(len(score_all))
    keys = list(grids)
    result = []
    for sign in (-1.0, 1.0):  # hard: most similar first; easy: least similar first
        order = shuffle[np.argsort(sign * score_all[shuffle], kind="stable")]
        picked: list[dict] = []
        for index, name in enumerate(keys):
            mine = order[image_of[order] == index]
            blocked = exclude.loc[exclude["image"] == name, ["x", "y"]].to_numpy(np.float64)
            # candidates far down the list are rarely needed: try a prefix, then the rest
            ahead = mine[: max(50 * count, 1000)]
            keep = _thin(x_all[ahead], y_all[ahead], radius, blocked, limit=count)
            if len(keep) < count and len(ahead) < len(mine):
                ahead = mine
                keep = _thin(x_all[ahead], y_all[ahead], radius, blocked, limit=count)
            picked.extend(
                {"image": name, "x": x_all[i], "y": y_all[i], "score": score_all[i]}
                for i in ahead[keep]
            )
        frame = pd.DataFrame(picked, columns=PROPOSAL_COLUMNS) if picked else _empty()
        frame = frame.sort_values("score", ascending=sign > 0, kind="stable").head(count)
        result.append(frame.reset_index(drop=True))
    return result[0], result[1]
