"""Per-cell calls from a handful of labelled cell crops, for notebooks: embed the crops on the
pretrained SimSearch features, call every other cell by its nearest prototypes or a linear
head, optionally with channel weights learned from the examples and with self-learning (the
examples' labels spread over the unlabelled cells' nearest-neighbour graph). Nothing is
written to disk and no global torch setting is changed.

About 620 lines, more than half of them the numpydoc (with run examples) of the notebook API."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading

from fishline.errors import InputError
from fishline.paint.cellfields import CellFieldSettings, paint_cell_field
from fishline.schema import default
from fishline.simsearch.channels import learn_channel_weights, reweight_channels
from fishline.simsearch.features import FeatureExtractor
from fishline.simsearch.images import ImageSet
from fishline.simsearch.search import nearest_prototype
from fishline.uncertainty import certainty

HEADS = ("prototypes", "linear")


def embed_views(
    extractor: FeatureExtractor, crops: Sequence[np.ndarray], rotations: bool = True
) -> np.ndarray:
    """(n, r, d) vectors of n C x h x w crops: r = 4 views each (the crop and its 90, 180
    and 270 degree rotations; cells have no up) or r = 1 without ``rotations``.

    Parameters
    ----------
    extractor : FeatureExtractor
        The extractor whose ``embed`` turns each view into one L2-normalised vector.
    crops : sequence of numpy.ndarray
        n cell crops, each (C, h, w) of any size, uint8 0-255 or float in [0, 1].
    rotations : bool, optional
        Also embed each crop rotated by 90, 180 and 270 degrees (default True).

    Returns
    -------
    numpy.ndarray
        (n, r, d) float32 unit vectors, d = ``extractor.dimension``: ``[i, 0]`` is crop i as
        given, ``[i, 1:]`` its rotations.

    Raises
    ------
    InputError
        If a crop is not (C, h, w) with the extractor's channel count.
    """
    turns = range(4) if rotations else range(1)
    views = [np.rot90(np.asarray(crop), k, axes=(1, 2)) for crop in crops for k in turns]
    return extractor.embed(views).reshape(len(crops), len(turns), -1)


class CellClassifier:
    """Classify cell crops from a few labelled examples per class.

    Parameters
    ----------
    extractor : FeatureExtractor
        The feature extractor whose ``embed`` turns crops of any size into vectors, e.g.
        ``FeatureExtractor("efficientnet_lite0", (48, 48), in_channels=2)``.
    temperature : float, optional
        Softmax temperature over the per-class cosine scores (see ``nearest_prototype``);
        default: the schema's ``simsearch.cells.temperature``.
    rotations : bool, optional
        Also use each prototype rotated by 90, 180 and 270 degrees (cells have no up).
    head : str, optional
        ``prototypes``: nearest labelled example per class (cosine); ``linear``: a
        multinomial logistic regression fitted on the labelled vectors (frozen pretrained
        features, L2 penalty ``1 / strength``; with examples of one class only, the
        prototypes decide). On the demo's harder painted GFP cells (masked crops, separate
        channels, learned weights) the linear head was 99.0 % right with 5 examples per
        class against 97.0 % for prototypes (docs/simsearch.md).
    strength : float, optional
        Inverse L2 penalty of the linear head (scikit-learn's ``C``), default 10.
    learn_weights : bool, optional
        With a separate-channel extractor, weigh the channels as the labelled examples say
        (:func:`~fishline.simsearch.channels.learn_channel_weights`: the weighting under
        which examples of a class are most alike and least like the other classes) before
        either head sees the vectors; ``channel_weights`` holds the result.

    Attributes
    ----------
    prototypes : numpy.ndarray
        (k, d) float32 example vectors after :meth:`fit` (views and pseudo-labelled cells).
    labels : numpy.ndarray
        (k,) object array, the class of each prototype.
    channel_weights : numpy.ndarray
        (C,) channel weights summing to 1 that the vectors are compared at (learned with
        ``learn_weights``, else the extractor's).
    linear : LogisticRegression or None
        The fitted linear head; None for ``prototypes`` or a single class.
    pseudo_labelled : int
        Unlabelled cells that joined the examples in the last fit.

    Raises
    ------
    InputError
        If ``head`` is not one of ``HEADS``, or ``learn_weights`` is set for an extractor
        without ``channels='separate'``.

    Examples
    --------
    >>> extractor = FeatureExtractor("efficientnet_lite0", (48, 48), 2, channels="separate")
    >>> classifier = CellClassifier(extractor, head="linear", learn_weights=True)
    >>> classifier.fit(examples, example_labels, unlabelled=cells)
    >>> calls = classifier.predict(cells)  # predicted_class, certainty, p_<class>
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        temperature: float = default("simsearch.cells.temperature"),
        rotations: bool = True,
        head: str = "prototypes",
        strength: float = 10.0,
        learn_weights: bool = False,
    ) -> None:
        if head not in HEADS:
            raise InputError("CellClassifier", f"head must be one of {HEADS}, got '{head}'")
        if learn_weights and extractor.channel_mode != "separate":
            raise InputError(
                "CellClassifier", "learn_weights needs an extractor with channels='separate'"
            )
        self.extractor = extractor
        self.temperature = temperature
        self.rotations = rotations
        self.head = head
        self.strength = strength
        self.learn_weights = learn_weights
        self.channel_weights = extractor.channel_weights
        self.linear: LogisticRegression | None = None
        self.prototypes = np.zeros((0, extractor.dimension), np.float32)
        self.labels = np.zeros(0, dtype=object)
        self.pseudo_labelled = 0

    def fit(
        self,
        crops: Sequence[np.ndarray],
        labels: Sequence[str],
        unlabelled: Sequence[np.ndarray] | None = None,
        min_confidence: float = default("simsearch.cells.self_learning.min_confidence"),
        neighbours: int = default("simsearch.cells.self_learning.neighbours"),
    ) -> CellClassifier:
        """Learn from the labelled ``crops`` (with their rotations); with ``unlabelled``
        crops, self-learn: the labels spread over the graph of every cell's ``neighbours``
        nearest cells (:func:`spread_labels`), and the unlabelled cells whose spread label
        holds at least ``min_confidence`` of their label mass join the examples with it
        before the head is fitted again. Returns the classifier itself.

        Parameters
        ----------
        crops : sequence of numpy.ndarray
            k labelled cell crops, each (C, h, w) of any size, uint8 0-255 or float in [0, 1].
        labels : sequence of str
            (k,) class of each crop.
        unlabelled : sequence of numpy.ndarray or None, optional
            Unlabelled (C, h, w) crops to self-learn from (not rotated); None or empty: no
            self-learning.
        min_confidence : float, optional
            Least share (0-1) of its label mass the spread label needs for an unlabelled cell to
            join the examples; default: the schema's
            ``simsearch.cells.self_learning.min_confidence``.
        neighbours : int, optional
            Nearest neighbours per cell in the label-spreading graph; default: the schema's
            ``simsearch.cells.self_learning.neighbours``.

        Returns
        -------
        CellClassifier
            The classifier itself, fitted.

        Raises
        ------
        InputError
            If ``labels`` is empty or not as long as ``crops``, or a crop has the wrong shape.

        Examples
        --------
        >>> extractor = FeatureExtractor("resnet18", (32, 32), in_channels=1)
        >>> crops = [np.random.default_rng(i).random((1, 20, 20), np.float32) for i in range(4)]
        >>> classifier = CellClassifier(extractor).fit(crops, ["a", "a", "b", "b"])
        >>> classifier.prototypes.shape  # 4 examples x 4 rotations, d = 256
        (16, 256)
        """
        labels = np.asarray(labels, dtype=object)
        if len(crops) != len(labels) or not len(labels):
            raise InputError("labels", f"{len(labels)} labels for {len(crops)} crops")
        views = embed_views(self.extractor, crops, self.rotations)
        extra = None
        if unlabelled is not None and len(unlabelled):
            extra = self.extractor.embed(list(unlabelled))
        return self.fit_vectors(
            views.reshape(-1, views.shape[2]),
            np.repeat(labels, views.shape[1]),
            extra,
            min_confidence,
            neighbours,
            groups=np.repeat(np.arange(len(labels)), views.shape[1]),
        )

    def fit_vectors(
        self,
        prototypes: np.ndarray,
        labels: Sequence[str],
        unlabelled: np.ndarray | None = None,
        min_confidence: float = default("simsearch.cells.self_learning.min_confidence"),
        neighbours: int = default("simsearch.cells.self_learning.neighbours"),
        groups: Sequence[int] | None = None,
    ) -> CellClassifier:
        """:meth:`fit` on vectors already embedded: (k, d) ``prototypes`` (each view of each
        example, e.g. its rotations) with their ``labels``, and (n, d) ``unlabelled`` cells;
        ``groups`` numbers the example each view comes from (for learning channel weights).
        For measuring many draws of prototypes without embedding the cells again.

        Parameters
        ----------
        prototypes : numpy.ndarray
            (k, d) float vectors of the extractor (at its own channel weights), cast to float32.
        labels : sequence of str
            (k,) class of each vector.
        unlabelled : numpy.ndarray or None, optional
            (n, d) vectors of unlabelled cells to self-learn from; None or empty: no
            self-learning.
        min_confidence : float, optional
            As for :meth:`fit`.
        neighbours : int, optional
            As for :meth:`fit`.
        groups : sequence of int or None, optional
            (k,) index of the example each vector is a view of; used only with
            ``learn_weights`` (None: every vector its own example).

        Returns
        -------
        CellClassifier
            The classifier itself, fitted.
        """
        self.labels = np.asarray(labels, dtype=object)
        self.channel_weights = self.extractor.channel_weights
        if self.learn_weights:
            self.channel_weights = learn_channel_weights(
                prototypes, self.labels, self.extractor.channel_weights, groups=groups
            )
        self.prototypes = self._weighed(prototypes)
        self.pseudo_labelled = 0
        self._fit_head()
        if unlabelled is not None and len(unlabelled):
            unlabelled = self._weighed(unlabelled)
            pseudo, confidence = spread_labels(self.prototypes, self.labels, unlabelled, neighbours)
            chosen = confidence >= min_confidence
            self.prototypes = np.concatenate([self.prototypes, unlabelled[chosen]])
            self.labels = np.concatenate([self.labels, pseudo[chosen]])
            self.pseudo_labelled = int(chosen.sum())
            self._fit_head()
        return self

    def _weighed(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors of the extractor at this classifier's channel weights."""
        vectors = np.asarray(vectors, np.float32)
        if not self.learn_weights:
            return vectors
        return reweight_channels(vectors, self.extractor.channel_weights, self.channel_weights)

    def _fit_head(self) -> None:
        """The linear head on the current labelled (and pseudo-labelled) vectors."""
        self.linear = None
        if self.head == "linear" and len(set(self.labels.tolist())) > 1:
            self.linear = LogisticRegression(C=self.strength, max_iter=2000)
            self.linear.fit(self.prototypes, self.labels.astype(str))

    def _call(self, vectors: np.ndarray) -> pd.DataFrame:
        if not len(self.labels):
            raise InputError("CellClassifier", "call fit() before predict()")
        if self.linear is None:
            return nearest_prototype(vectors, self.prototypes, self.labels, self.temperature)
        probabilities = self.linear.predict_proba(np.asarray(vectors, np.float32))
        classes = list(self.linear.classes_)  # sorted, as nearest_prototype's
        table = pd.DataFrame(
            {
                "predicted_class": np.asarray(classes, dtype=object)[probabilities.argmax(1)],
                "certainty": certainty(probabilities, smoothing=0.0),
            }
        )
        for index, name in enumerate(classes):
            table[f"p_{name}"] = probabilities[:, index]
        return table

    def predict(self, crops: Sequence[np.ndarray]) -> pd.DataFrame:
        """One row per crop: ``predicted_class``, ``certainty`` (1 - normalised entropy) and
        ``p_<class>`` for each class in sorted order.

        Parameters
        ----------
        crops : sequence of numpy.ndarray
            n cell crops, each (C, h, w) of any size, uint8 0-255 or float in [0, 1].

        Returns
        -------
        pandas.DataFrame
            n rows in crop order: ``predicted_class`` (str), ``certainty`` (float, 0 = uniform,
            1 = one-hot) and ``p_<class>`` (float probabilities, summing to 1 per row).

        Raises
        ------
        InputError
            If the classifier is not fitted yet, or a crop has the wrong shape.

        Examples
        --------
        >>> calls = classifier.predict(crops)  # the classifier and crops of fit's example
        >>> list(calls.columns)
        ['predicted_class', 'certainty', 'p_a', 'p_b']
        """
        return self._call(self._weighed(self.extractor.embed(list(crops))))

    def predict_vectors(self, vectors: np.ndarray) -> pd.DataFrame:
        """:meth:`predict` on (n, d) vectors already embedded.

        Parameters
        ----------
        vectors : numpy.ndarray
            (n, d) float vectors of the extractor (at its own channel weights).

        Returns
        -------
        pandas.DataFrame
            As :meth:`predict`: ``predicted_class``, ``certainty`` and ``p_<class>`` per vector.

        Raises
        ------
        InputError
            If the classifier is not fitted yet.
        """
        return self._call(self._weighed(vectors))


def spread_labels(
    labelled: np.ndarray,
    labels: Sequence[str],
    unlabelled: np.ndarray,
    neighbours: int = default("simsearch.cells.self_learning.neighbours"),
    alpha: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels for ``unlabelled`` vectors spread from the ``labelled`` ones over the graph of
    each vector's ``neighbours`` nearest (scikit-learn's ``LabelSpreading``, Zhou et al.
    2004; ``alpha`` is the share of its neighbours' label a vector takes per step): the
    label with the most mass and that mass (0-1) per unlabelled vector. Cells of one class
    lie along the class's own manifold, so labels reach cells the nearest example would
    miss.

    Parameters
    ----------
    labelled : numpy.ndarray
        (k, d) float vectors with known classes.
    labels : sequence of str
        (k,) class of each labelled vector.
    unlabelled : numpy.ndarray
        (n, d) float vectors to label.
    neighbours : int, optional
        Neighbours per vector in the kNN graph (capped at k + n - 1); default: the schema's
        ``simsearch.cells.self_learning.neighbours``.
    alpha : float, optional
        Clamping factor in (0, 1), default 0.5.

    Returns
    -------
    names : numpy.ndarray
        (n,) object array, the class with the most mass per unlabelled vector.
    mass : numpy.ndarray
        (n,) float64 in [0, 1], that class's share of the vector's label mass.
    """
    names = sorted(set(np.asarray(labels, dtype=object).tolist()))
    points = np.concatenate([labelled, unlabelled]).astype(np.float64)
    targets = np.concatenate([[names.index(name) for name in labels], np.full(len(unlabelled), -1)])
    model = LabelSpreading(
        kernel="knn", n_neighbors=min(neighbours, len(points) - 1), alpha=alpha, max_iter=1000
    ).fit(points, targets)
    mass = model.label_distributions_[len(labelled) :]
    return np.asarray(names, dtype=object)[mass.argmax(1)], mass.max(1)


def masked_cell_crops(image: np.ndarray, cells: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """One crop per cell of the label image ``cells`` (H x W, 0 = no cell): the C x H x W
    ``image`` inside the cell's bounding box, zero outside its own mask so no neighbour
    leaks in (crops of any size, as :meth:`CellClassifier.fit` takes them); and the cell
    labels of the crops, in order.

    Parameters
    ----------
    image : numpy.ndarray
        (C, H, W) image, any numeric dtype.
    cells : numpy.ndarray
        (H, W) integer cell labels, 0 = no cell.

    Returns
    -------
    crops : list of numpy.ndarray
        One (C, h, w) crop per cell present, in label order, dtype of ``image``.
    labels : numpy.ndarray
        (m,) int, the cell label of each crop, ascending.
    """
    crops, labels = [], []
    for label, box in enumerate(ndimage.find_objects(cells), start=1):
        if box is not None:
            crops.append(image[:, box[0], box[1]] * (cells[box] == label))
            labels.append(label)
    return crops, np.asarray(labels, dtype=int)


def painted_cell_crops(
    settings: CellFieldSettings, fields: int, seed: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Masked crops (:func:`masked_cell_crops`) of every cell of ``fields`` painted GFP
    fields (noise-free) and their classes: a
    labelled cell set to try heads and features on.

    Parameters
    ----------
    settings : CellFieldSettings
        What the cell-field painter draws (size, cells, classes, ...).
    fields : int
        Number of fields to paint.
    seed : int
        Seed of the one random generator all fields draw from.

    Returns
    -------
    crops : list of numpy.ndarray
        One (2, h, w) float32 crop (dna, gfp) per cell, field after field.
    classes : numpy.ndarray
        (N,) str, the painted class of each crop.
    """
    rng = np.random.default_rng(seed)
    crops, classes = [], []
    for _ in range(fields):
        image, _, cells, table = paint_cell_field(rng, settings)
        field_crops, labels = masked_cell_crops(image, cells)
        crops += field_crops
        classes += table["class"].to_numpy()[labels - 1].tolist()
    return crops, np.asarray(classes)


def window_crops(image_set: ImageSet, size: int) -> tuple[list[np.ndarray], pd.DataFrame]:
    """A ``size`` x ``size`` window centred on every truth point of an image set (zeros
    where the window leaves the image, never mirrored) and one row per window: image, x, y,
    class. These are the cells a per-cell call sees: the nucleus in the centre, its
    neighbours wherever they touch.

    Parameters
    ----------
    image_set : ImageSet
        (C, H, W) float32 images and their truth points [x, y, class] (px).
    size : int
        Window side, px; centred on the point rounded to the nearest pixel.

    Returns
    -------
    crops : list of numpy.ndarray
        One (C, size, size) float32 window per truth point, image by image in sheet order.
    table : pandas.DataFrame
        One row per window: image (name), x, y (px, as in the truth) and class.
    """
    crops, rows = [], []
    half = size // 2
    for name in image_set.names:
        image = image_set.images[name]
        height, width = image.shape[1:]
        truth = image_set.truth.get(name, pd.DataFrame(columns=["x", "y", "class"]))
        for point_x, point_y, label in truth[["x", "y", "class"]].to_numpy():
            x, y = round(float(point_x)), round(float(point_y))
            crop = np.zeros((image.shape[0], size, size), np.float32)
            top, left = y - half, x - half
            rows_in = slice(max(top, 0), min(top + size, height))
            cols_in = slice(max(left, 0), min(left + size, width))
            crop[
                :,
                rows_in.start - top : rows_in.stop - top,
                cols_in.start - left : cols_in.stop - left,
            ] = image[:, rows_in, cols_in]
            crops.append(crop)
            rows.append({"image": name, "x": point_x, "y": point_y, "class": label})
    return crops, pd.DataFrame(rows, columns=["image", "x", "y", "class"])


def prototype_curve(
    classifier: CellClassifier,
    views: np.ndarray,
    classes: np.ndarray,
    counts: Sequence[int],
    draws: int,
    seed: int,
    min_confidence: float = default("simsearch.cells.self_learning.min_confidence"),
    neighbours: int = default("simsearch.cells.self_learning.neighbours"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How many examples per class the per-cell calls need: for each count and draw, pick
    that many labelled cells per class at random, call every other cell from them alone
    (strategy ``examples``) and after self-learning on the other cells (``self-learning``:
    label spreading, :meth:`CellClassifier.fit_vectors`), and score the calls against the
    truth. Rows carry the classifier's ``head`` (prototypes or linear), so curves of several
    heads concatenate.

    Parameters
    ----------
    classifier : CellClassifier
        The classifier to refit for every draw (left fitted on the last one).
    views : numpy.ndarray
        (n, r, d) float vectors as :func:`embed_views` gives: each cell's vector first, then
        those of its rotations (r = 1 without). Rotations are read only for the cells that a
        draw picks as examples (:func:`example_draws`); the others' may be anything.
    classes : numpy.ndarray
        (n,) true class of each cell.
    counts : sequence of int
        Examples per class to try.
    draws : int
        Random draws of examples per count.
    seed : int
        Base seed; each draw uses ``numpy.random.default_rng([seed, count, draw])``.
    min_confidence : float, optional
        Self-learning threshold, as for :meth:`CellClassifier.fit`.
    neighbours : int, optional
        Label-spreading neighbours, as for :meth:`CellClassifier.fit`.

    Returns
    -------
    curve : pandas.DataFrame
        One row per count, draw and strategy: prototypes (count), head, strategy, draw,
        accuracy (0-1), certainty (mean), pseudo_labelled and cells_called.
    calls : pandas.DataFrame
        The calls of the first draw at the largest count from the examples alone
        (:meth:`CellClassifier.predict` columns), indexed by ``cell`` (position in ``views``).

    Raises
    ------
    InputError
        If a class has no more cells than the largest count.
    """
    rows, example_calls = [], pd.DataFrame()
    copies = views.shape[1]
    largest = max(counts)
    for count, draw, chosen in example_draws(classes, counts, draws, seed):
        rest = np.setdiff1d(np.arange(len(classes)), chosen)
        for strategy, unlabelled in (("examples", None), ("self-learning", views[rest, 0])):
            classifier.fit_vectors(
                views[chosen].reshape(-1, views.shape[2]),
                np.repeat(classes[chosen], copies),
                unlabelled,
                min_confidence,
                neighbours,
                groups=np.repeat(np.arange(len(chosen)), copies),
            )
            calls = classifier.predict_vectors(views[rest, 0])
            correct = calls["predicted_class"].to_numpy() == classes[rest]
            rows.append(
                {
                    "prototypes": count,
                    "head": classifier.head,
                    "strategy": strategy,
                    "draw": draw,
                    "accuracy": float(correct.mean()),
                    "certainty": float(calls["certainty"].mean()),
                    "pseudo_labelled": classifier.pseudo_labelled,
                    "cells_called": len(rest),
                }
            )
            if count == largest and draw == 0 and strategy == "examples":
                example_calls = calls.set_index(pd.Index(rest, name="cell"))
    return pd.DataFrame(rows), example_calls


def example_draws(
    classes: np.ndarray, counts: Sequence[int], draws: int, seed: int
) -> list[tuple[int, int, np.ndarray]]:
    """The labelled cells of every (count, draw) of :func:`prototype_curve`: ``count``
    cells per class at random, from ``numpy.random.default_rng([seed, count, draw])``.

    Parameters
    ----------
    classes : numpy.ndarray
        (n,) true class of each cell.
    counts : sequence of int
        Examples per class.
    draws : int
        Random draws per count.
    seed : int
        Base seed.

    Returns
    -------
    list of (int, int, numpy.ndarray)
        (count, draw, positions of the chosen cells in ``classes``), counts in the given
        order, draws from 0.

    Raises
    ------
    InputError
        If a class has no more cells than the largest count.
    """
    names = sorted(set(classes.tolist()))
    sizes = {name: int((classes == name).sum()) for name in names}
    largest = max(counts)
    short = {name: size for name, size in sizes.items() if size <= largest}
    if short:
        raise InputError(
            "simsearch.cells.prototypes",
            f"{largest} examples per class need more than {largest} cells of each class; "
            f"the truth has {short}",
        )
    picks = [np.flatnonzero(classes == name) for name in names]
    plan = []
    for count in counts:
        for draw in range(draws):
            rng = np.random.default_rng([seed, count, draw])
            chosen = np.concatenate([rng.choice(pick, count, replace=False) for pick in picks])
            plan.append((count, draw, chosen))
    return plan


def curve_summary(curve: pd.DataFrame, classes: int) -> pd.DataFrame:
    """Mean ± std accuracy over draws per count, head and strategy, beside chance.

    Parameters
    ----------
    curve : pandas.DataFrame
        The per-draw table of :func:`prototype_curve`.
    classes : int
        Number of classes, for the chance accuracy ``1 / classes``.

    Returns
    -------
    pandas.DataFrame
        One row per (prototypes, head, strategy): draws, accuracy_mean and accuracy_std
        (0-1; std NaN with one draw), mean certainty and pseudo_labelled, and the text
        columns accuracy (``"m ± s %"``) and chance (``"c %"``).
    """
    grouped = curve.groupby(["prototypes", "head", "strategy"], sort=True)
    summary = grouped.agg(
        draws=("draw", "size"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        certainty=("certainty", "mean"),
        pseudo_labelled=("pseudo_labelled", "mean"),
    ).reset_index()
    summary["accuracy"] = [
        f"{100 * m:.1f} ± {100 * (0 if np.isnan(s) else s):.1f} %"
        for m, s in zip(summary["accuracy_mean"], summary["accuracy_std"], strict=True)
    ]
    summary["chance"] = f"{100 / classes:.1f} %"
    return summary
