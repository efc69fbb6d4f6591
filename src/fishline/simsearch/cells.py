"""Per-cell calls from a handful of labelled cell crops, for notebooks: embed the crops on the
pretrained SimSearch features, call every other cell by its nearest prototypes, and
optionally grow the prototypes from confidently called unlabelled cells (self-learning).
Nothing is written to disk and no global torch setting is changed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.simsearch.features import FeatureExtractor
from fishline.simsearch.search import nearest_prototype


def _rotations(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each C x h x w crop and its 90, 180 and 270 degree rotations, crop by crop."""
    return [np.rot90(np.asarray(crop), k, axes=(1, 2)) for crop in crops for k in range(4)]


class CellClassifier:
    """Classify cell crops from a few labelled examples per class.

    Parameters
    ----------
    extractor
        The feature extractor whose ``embed`` turns crops of any size into vectors, e.g.
        ``FeatureExtractor("efficientnet_lite0", (48, 48), in_channels=2)``.
    temperature
        Softmax temperature over the per-class cosine scores (see ``nearest_prototype``).
    rotations
        Also use each prototype rotated by 90, 180 and 270 degrees (cells have no up).

    Examples
    --------
    >>> classifier = CellClassifier(extractor).fit(examples, example_labels, unlabelled=cells)
    >>> calls = classifier.predict(cells)  # predicted_class, certainty, p_<class>
    """

    def __init__(
        self, extractor: FeatureExtractor, temperature: float = 0.05, rotations: bool = True
    ) -> None:
        self.extractor = extractor
        self.temperature = temperature
        self.rotations = rotations
        self.prototypes = np.zeros((0, extractor.dimension), np.float32)
        self.labels = np.zeros(0, dtype=object)
        self.pseudo_labelled = 0

    def fit(
        self,
        crops: Sequence[np.ndarray],
        labels: Sequence[str],
        unlabelled: Sequence[np.ndarray] | None = None,
        min_certainty: float = 0.5,
        per_class: int = 10,
    ) -> CellClassifier:
        """Learn the prototypes: the labelled ``crops`` (with their rotations); with
        ``unlabelled`` crops, also the up to ``per_class`` most certain unlabelled cells
        called as each class with certainty >= ``min_certainty`` (one self-learning round:
        pseudo-labels from the labelled prototypes only, so a wrong one cannot recruit
        more). Returns the classifier itself."""
        labels = np.asarray(labels, dtype=object)
        if len(crops) != len(labels) or not len(labels):
            raise InputError("labels", f"{len(labels)} labels for {len(crops)} crops")
        shown = _rotations(crops) if self.rotations else list(crops)
        copies = 4 if self.rotations else 1
        self.prototypes = self.extractor.embed(shown)
        self.labels = np.repeat(labels, copies)
        self.pseudo_labelled = 0
        if unlabelled is not None and len(unlabelled):
            vectors = self.extractor.embed(list(unlabelled))
            calls = self._call(vectors)
            chosen = []
            for name in np.unique(labels):
                confident = calls.index[
                    (calls["predicted_class"] == name) & (calls["certainty"] >= min_certainty)
                ]
                ranked = calls.loc[confident, "certainty"].sort_values(ascending=False)
                chosen.extend(ranked.index[:per_class])
            chosen = np.asarray(sorted(chosen), dtype=int)
            self.prototypes = np.concatenate([self.prototypes, vectors[chosen]])
            self.labels = np.concatenate(
                [self.labels, calls.loc[chosen, "predicted_class"].to_numpy(dtype=object)]
            )
            self.pseudo_labelled = len(chosen)
        return self

    def _call(self, vectors: np.ndarray) -> pd.DataFrame:
        if not len(self.labels):
            raise InputError("CellClassifier", "call fit() before predict()")
        return nearest_prototype(vectors, self.prototypes, self.labels, self.temperature)

    def predict(self, crops: Sequence[np.ndarray]) -> pd.DataFrame:
        """One row per crop: ``predicted_class``, ``certainty`` (1 - normalised entropy) and
        ``p_<class>`` for each class in sorted order."""
        return self._call(self.extractor.embed(list(crops)))
