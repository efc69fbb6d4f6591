"""How a C-channel image meets a backbone made for RGB, and how much each channel counts:
the mix onto RGB (``mixed``), per-channel weights of the ``separate`` vectors, reweighting
stored vectors, and weights learned from labelled cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fishline.errors import InputError


def channel_mix(in_channels: int) -> np.ndarray:
    """3 x C matrix mapping C image channels onto the backbone's RGB input.

    C = 1: grey to all three; C = 2 (e.g. dna, gfp): R = channel 0, G = channel 1,
    B = their mean; C = 3: identity; C > 3: RGB input k is the mean of channels i with
    i mod 3 = k. Every output is a convex combination, so [0, 1] stays [0, 1].

    Parameters
    ----------
    in_channels : int
        C, the image's channel count.

    Returns
    -------
    numpy.ndarray
        (3, C) float32 weights, each row summing to 1.

    Raises
    ------
    InputError
        If ``in_channels`` < 1.
    """
    if in_channels < 1:
        raise InputError("in_channels", f"needs at least one channel, got {in_channels}")
    mix = np.zeros((3, in_channels), dtype=np.float32)
    if in_channels == 1:
        mix[:, 0] = 1.0
    elif in_channels == 2:
        mix[0, 0] = mix[1, 1] = 1.0
        mix[2] = 0.5
    else:
        for channel in range(in_channels):
            mix[channel % 3, channel] = 1.0
        mix /= mix.sum(axis=1, keepdims=True)
    return mix


def normalised_channel_weights(weights: Sequence[float] | None, in_channels: int) -> np.ndarray:
    """Per-channel weights summing to 1 (equal when not given).

    Parameters
    ----------
    weights : Sequence of float or None
        One non-negative weight per channel, not all 0; None for equal weights.
    in_channels : int
        C, the channel count.

    Returns
    -------
    numpy.ndarray
        (C,) float32 weights summing to 1.

    Raises
    ------
    InputError
        If ``weights`` is not C non-negative values with a positive sum.
    """
    if weights is None:
        return np.full(in_channels, 1.0 / in_channels, np.float32)
    values = np.asarray(weights, np.float32)
    if values.shape != (in_channels,) or (values < 0).any() or values.sum() <= 0:
        raise InputError(
            "channel_weights",
            f"needs {in_channels} non-negative weights, not all 0, got {list(weights)}",
        )
    return values / values.sum()


def channel_blocks(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """(n, C, d / C) unit vector of each channel of separate-channel vectors made with
    ``weights``: each block of such a vector is its unit vector times the square root of its
    weight (:meth:`fishline.simsearch.features.FeatureExtractor._normalise`).

    Parameters
    ----------
    vectors : numpy.ndarray
        (n, d) separate-channel vectors, d a multiple of C.
    weights : Sequence of float
        The C channel weights (summing to 1) the vectors were made with.

    Returns
    -------
    numpy.ndarray
        (n, C, d / C) float64 per-channel unit vectors.

    Raises
    ------
    InputError
        If a weight is <= 0 (its block cannot be recovered).
    """
    weights = np.asarray(weights, np.float64)
    if (weights <= 0).any():
        raise InputError("channel_weights", "a channel of weight 0 left no block to recover")
    blocks = np.asarray(vectors, np.float64).reshape(len(vectors), len(weights), -1)
    return blocks / np.sqrt(weights)[None, :, None]


def reweight_channels(
    vectors: np.ndarray, weights_from: Sequence[float], weights_to: Sequence[float]
) -> np.ndarray:
    """Vectors of separate channels (:class:`~fishline.simsearch.features.FeatureExtractor`
    with ``channels='separate'``) made with ``weights_from`` as they would be with
    ``weights_to``, without the backbone.

    Parameters
    ----------
    vectors : numpy.ndarray
        (n, d) separate-channel vectors, d a multiple of C.
    weights_from : Sequence of float
        The C weights (summing to 1, all > 0) the vectors were made with.
    weights_to : Sequence of float
        The C new weights: non-negative, not all 0; normalised to sum 1.

    Returns
    -------
    numpy.ndarray
        (n, d) float32 unit vectors.

    Raises
    ------
    InputError
        If ``weights_from`` has a weight <= 0 or ``weights_to`` is invalid
        (:func:`normalised_channel_weights`).
    """
    new = normalised_channel_weights(weights_to, len(weights_from))
    blocks = channel_blocks(vectors, weights_from) * np.sqrt(new)[None, :, None]
    out = blocks.reshape(len(blocks), -1)
    return (out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def learn_channel_weights(
    vectors: np.ndarray,
    labels: Sequence[str],
    weights: Sequence[float],
    negatives: np.ndarray | None = None,
    negative_labels: Sequence[str] | None = None,
    groups: Sequence[int] | None = None,
) -> np.ndarray:
    """Channel weights (summing to 1) under which labelled examples of a class are most alike
    and least like the other classes and their own class's negatives.

    ``vectors`` are separate-channel vectors made with ``weights`` (e.g. prototypes and their
    rotations) with their class ``labels``; ``negatives`` are vectors flagged as not of
    ``negative_labels``; ``groups`` marks views of one example (e.g. its rotations), never
    paired with each other, since their likeness says how invariant a channel is, not how
    alike a class is. Every pair gives one cosine per channel; Fisher's discriminant of
    same-class pairs against different-class and prototype-negative pairs is the weighting
    (negative entries set to 0: a channel is used or left out, never inverted). Equal weights
    when no pair separates, e.g. a single class without negatives, or one example per class.

    Parameters
    ----------
    vectors : numpy.ndarray
        (n, d) separate-channel vectors, d a multiple of C.
    labels : Sequence of str
        (n,) class of each vector.
    weights : Sequence of float
        The C weights (summing to 1, all > 0) the vectors and negatives were made with.
    negatives : numpy.ndarray or None, optional
        (m, d) separate-channel vectors of negatives; None (default) for none.
    negative_labels : Sequence of str or None, optional
        (m,) the class each negative is not of; needed with ``negatives``.
    groups : Sequence of int or None, optional
        (n,) example id of each vector (views of one example share it); None (default) pairs
        every vector with every other.

    Returns
    -------
    numpy.ndarray
        (C,) float64 weights summing to 1.

    Raises
    ------
    InputError
        If a weight in ``weights`` is <= 0.
    """
    count = len(weights)
    blocks = channel_blocks(vectors, weights)
    labels = np.asarray(labels, dtype=object)
    cosines = np.einsum("icd,jcd->ijc", blocks, blocks)
    first, second = np.triu_indices(len(blocks), k=1)
    if groups is not None:
        groups = np.asarray(groups)
        apart = groups[first] != groups[second]
        first, second = first[apart], second[apart]
    same = labels[first] == labels[second]
    positive, negative = cosines[first[same], second[same]], cosines[first[~same], second[~same]]
    if negatives is not None and len(negatives):
        against = np.einsum("icd,jcd->ijc", blocks, channel_blocks(negatives, weights))
        own = labels[:, None] == np.asarray(negative_labels, dtype=object)[None, :]
        negative = np.concatenate([negative, against[own]])
    if len(positive) < 2 or len(negative) < 2:
        return np.full(count, 1.0 / count)
    spread = (
        np.cov(positive.T).reshape(count, count) + np.cov(negative.T).reshape(count, count)
    ) / 2
    spread += np.eye(count) * max(1e-3 * np.trace(spread) / count, 1e-9)
    direction = np.linalg.solve(spread, positive.mean(0) - negative.mean(0)).clip(min=0)
    if direction.sum() <= 0:
        return np.full(count, 1.0 / count)
    return direction / direction.sum()
