"""Typed settings of SimSearch: the search (config block ``simsearch.search``: windows,
stride, backbone, channels) and the training (``simsearch.train``), one frozen dataclass
per part of the recipe, every default the schema's (what each setting means:
config/README.md). Build them from a config block with ``from_config``, or change a
default with :func:`dataclasses.replace`::

    settings = TrainSettings()
    settings = replace(settings, supcon=replace(settings.supcon, epochs=10))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fishline.schema import setting_default, typed_settings


def _schema(key: str) -> Any:
    """The field default of ``simsearch.train.<key>`` (:func:`setting_default`)."""
    return setting_default(f"simsearch.train.{key}")


@dataclass(frozen=True)
class Solarize:
    """Invert pixels at or above ``threshold`` in a share ``p`` of the patches."""

    p: float = _schema("augment.solarize.p")
    threshold: float = _schema("augment.solarize.threshold")


@dataclass(frozen=True)
class Dropout:
    """Zero one square of ``size`` x the patch side in a share ``p`` of the patches."""

    p: float = _schema("augment.dropout.p")
    size: float = _schema("augment.dropout.size")


@dataclass(frozen=True)
class AugmentSettings:
    """The training augmentations (``simsearch.train.augment``)."""

    flip: bool = _schema("augment.flip")
    rotate: bool = _schema("augment.rotate")
    solarize: Solarize = field(default_factory=Solarize)
    dropout: Dropout = field(default_factory=Dropout)
    brightness: float = _schema("augment.brightness")
    contrast: tuple[float, float] = _schema("augment.contrast")


@dataclass(frozen=True)
class SimCLRSettings:
    """The SimCLR stage on the noisy patches (``simsearch.train.simclr``)."""

    epochs: int = _schema("simclr.epochs")
    batch_size: int = _schema("simclr.batch_size")
    lr: float = _schema("simclr.lr")
    step: int = _schema("simclr.step")
    gamma: float = _schema("simclr.gamma")
    temperature: float = _schema("simclr.temperature")
    freeze_early: bool = _schema("simclr.freeze_early")


@dataclass(frozen=True)
class SupConSettings:
    """The supervised contrastive stage (``simsearch.train.supcon``)."""

    epochs: int = _schema("supcon.epochs")
    min_steps: int = _schema("supcon.min_steps")
    batch_size: int = _schema("supcon.batch_size")
    lr: float = _schema("supcon.lr")
    step: int = _schema("supcon.step")
    gamma: float = _schema("supcon.gamma")
    temperature: float = _schema("supcon.temperature")
    freeze_early: bool = _schema("supcon.freeze_early")
    negatives_per_class: int = _schema("supcon.negatives_per_class")


@dataclass(frozen=True)
class LinearSettings:
    """The linear head on the frozen embedding (``simsearch.train.linear``)."""

    epochs: int = _schema("linear.epochs")
    batch_size: int = _schema("linear.batch_size")
    lr: float = _schema("linear.lr")


@dataclass(frozen=True)
class PseudoLabelSettings:
    """Pseudo-label self-learning (``simsearch.train.pseudo_labels``)."""

    supcon: bool = _schema("pseudo_labels.supcon")
    min_confidence: float = _schema("pseudo_labels.min_confidence")


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`fishline.simsearch.train.train_simsearch` needs besides the data
    (config block ``simsearch.train``; each default is the schema's).

    Examples
    --------
    >>> TrainSettings().supcon.epochs
    3
    >>> TrainSettings.from_config(config["simsearch"]["train"]).backbone  # a validated config
    'resnet18'
    """

    input_size: int = _schema("input_size")
    projection: int = _schema("projection")
    backbone: str = _schema("backbone")
    weights: str | None = _schema("weights")
    self_learning: tuple[str, ...] = _schema("self_learning")
    pseudo_labels: PseudoLabelSettings = field(default_factory=PseudoLabelSettings)
    simclr: SimCLRSettings = field(default_factory=SimCLRSettings)
    supcon: SupConSettings = field(default_factory=SupConSettings)
    linear: LinearSettings = field(default_factory=LinearSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> TrainSettings:
        """The settings of a ``simsearch.train`` block with every key given (as the
        validated config has it); a missing or unknown key, at any depth, is an InputError
        naming it: a misspelled key must not fall back to its default silently."""
        return typed_settings(cls, block, "training settings")


@dataclass(frozen=True)
class SearchSettings:
    """How images are searched (config block ``simsearch.search``; each default is the
    schema's): square windows of ``patch`` px every ``stride`` px (None = 0.1 x patch),
    the feature ``backbone`` and its local ``weights``, and how the channels enter the
    vectors (``channels``: mixed or separate, with ``channel_weights``).

    Examples
    --------
    >>> SearchSettings(patch=50).geometry()
    ((50, 50), 5.0)
    """

    patch: int = setting_default("simsearch.search.patch")
    stride: float | None = setting_default("simsearch.search.stride")
    backbone: Literal["efficientnet_lite0", "resnet18"] = setting_default(
        "simsearch.search.backbone"
    )
    weights: str | None = setting_default("simsearch.search.weights")
    channels: Literal["mixed", "separate"] = setting_default("simsearch.search.channels")
    channel_weights: tuple[float, ...] | None = setting_default("simsearch.search.channel_weights")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> SearchSettings:
        """The settings of a ``simsearch.search`` block (every key given)."""
        return typed_settings(cls, block, "simsearch.search")

    def geometry(self) -> tuple[tuple[int, int], float]:
        """(window (h, w), stride px): the stride defaults to 0.1 x the window width, as
        in the paper."""
        patch = (int(self.patch), int(self.patch))
        return patch, float(self.stride or 0.1 * patch[1])


@dataclass(frozen=True)
class DetectSettings:
    """How a trained detector runs (config block ``simsearch.detect`` but its
    ``segmentation`` switch, the workflow's): window ``stride`` in px (None = the search
    stride the annotations record), the per-class ``confidence`` where the annotations set
    none, and windows per network call (``batch_size``)."""

    stride: float | None = setting_default("simsearch.detect.stride")
    confidence: float = setting_default("simsearch.detect.confidence")
    batch_size: int = setting_default("simsearch.detect.batch_size")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> DetectSettings:
        """The settings of a ``simsearch.detect`` block (every key given)."""
        return typed_settings(cls, block, "simsearch.detect", ignore=("segmentation",))


@dataclass(frozen=True)
class CellSelfLearning:
    """Label spreading for per-cell calls: unlabelled cells join the examples where their
    call is at least ``min_confidence``, over a ``neighbours``-nearest graph."""

    min_confidence: float = setting_default("simsearch.cells.self_learning.min_confidence")
    neighbours: int = setting_default("simsearch.cells.self_learning.neighbours")


@dataclass(frozen=True)
class CellCallSettings:
    """Per-cell calls from a few labelled cells (config block ``simsearch.cells`` but its
    ``enabled`` switch, the workflow's): the ``window`` around each cell, the example counts
    per class (``prototypes``) and ``draws`` of each, the softmax ``temperature``, the
    ``heads`` compared, whether channel weights are learned, and the self-learning."""

    window: int = setting_default("simsearch.cells.window")
    prototypes: tuple[int, ...] = setting_default("simsearch.cells.prototypes")
    draws: int = setting_default("simsearch.cells.draws")
    temperature: float = setting_default("simsearch.cells.temperature")
    heads: tuple[str, ...] = setting_default("simsearch.cells.heads")
    learn_weights: bool = setting_default("simsearch.cells.learn_weights")
    self_learning: CellSelfLearning = field(default_factory=CellSelfLearning)

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CellCallSettings:
        """The settings of a ``simsearch.cells`` block (every key given)."""
        return typed_settings(cls, block, "simsearch.cells", ignore=("enabled",))
