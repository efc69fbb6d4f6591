"""Typed settings of the FISH patch painter (config block ``fish.paint``), one frozen
dataclass per part, every default the schema's (what each key means: config/README.md).
The field painter paints its nuclei with them too. Values the schema cannot check (a
condition of an unknown class, an empty range, more signals than the smallest nucleus
holds, one colour for both probes) are an InputError naming the key when the settings are
made. Change a default with :func:`dataclasses.replace`::

    settings = FishPaintSettings()
    settings = replace(settings, patch_size=96, conditions=settings.conditions[:2])

The optics (``realism``, ``warp``) and the nuclei stay mappings: the optics and nucleus
code read them, shared with the metaphase and cell painters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fishline.errors import InputError
from fishline.paint.draws import bounds
from fishline.schema import deep_merge, default, definition_default, setting_default, typed_settings

KEY = "fish.paint"
# the signals that need a place of their own in the nucleus (double minutes may touch)
SIGNAL_KEYS = ("target_spots", "reference_spots", "target_clusters", "reference_clusters")


def _schema(key: str) -> Any:
    """The field default of ``fish.paint.<key>`` (:func:`setting_default`)."""
    return setting_default(f"{KEY}.{key}")


def _condition(key: str) -> Any:
    """The field default of one condition's ``key`` (:func:`definition_default`)."""
    return definition_default("condition", key)


def _split(key: str) -> Any:
    """The field default of one split's ``key`` (:func:`definition_default`)."""
    return definition_default("split", key)


def _block(key: str) -> Any:
    """A mapping field's default factory: a fresh copy of the schema's block."""
    return field(default_factory=lambda: default(f"{KEY}.{key}"))


@dataclass(frozen=True)
class Probes:
    """Which colour carries the target probe (e.g. MYCN, HER2) and which the reference (e.g.
    CEP17)."""

    target: Literal["red", "green"] = _schema("probes.target")
    reference: Literal["red", "green"] = _schema("probes.reference")


@dataclass(frozen=True)
class Condition:
    """One generation condition: its class, share of the images and the signals painted per
    nucleus (counts as a number or a ``(low, high)`` range). A size or peak left None is
    the painter's (:class:`FishPaintSettings`)."""

    name: str
    class_: str
    target_spots: int | tuple[int, int]
    weight: float = _condition("weight")
    reference_spots: int | tuple[int, int] = _condition("reference_spots")
    target_clusters: int | tuple[int, int] = _condition("target_clusters")
    reference_clusters: int | tuple[int, int] = _condition("reference_clusters")
    cluster_size: int | tuple[int, int] = _condition("cluster_size")
    target_minutes: int | tuple[int, int] = _condition("target_minutes")
    target_clouds: int | tuple[int, int] = _condition("target_clouds")
    spot_sigma: float | tuple[float, float] | None = None
    spot_intensity: float | tuple[float, float] | None = None
    cloud_size: float | tuple[float, float] | None = None


@dataclass(frozen=True)
class Split:
    """One painted set: ``n`` images, the stain (``fish`` or ``surface``: out-of-distribution
    cells), the source (``patches`` or crops cut from ``fields``) and the changes to the
    painter's ``realism`` and ``nuclei`` for this set only."""

    n: int
    stain: Literal["fish", "surface"] = _split("stain")
    source: Literal["patches", "fields"] = _split("source")
    realism: Mapping[str, Mapping[str, Any]] | None = None
    nuclei: Mapping[str, Any] | None = None


def _conditions() -> tuple[Condition, ...]:
    """The schema's conditions."""
    return tuple(
        typed_settings(Condition, entry, f"{KEY}.conditions[{index}]")
        for index, entry in enumerate(default(f"{KEY}.conditions"))
    )


def _splits() -> dict[str, Split]:
    """The schema's splits."""
    return {
        name: typed_settings(Split, spec, f"{KEY}.splits.{name}")
        for name, spec in default(f"{KEY}.splits").items()
    }


@dataclass(frozen=True)
class FishPaintSettings:
    """What the FISH painter draws (``fish.paint``): one nucleus per patch with its probe
    signals by condition, then the optics of ``realism``.

    Examples
    --------
    >>> settings = FishPaintSettings()
    >>> [condition.class_ for condition in settings.conditions][:2]
    ['normal', 'gain']
    >>> settings.for_split("shifted").nuclei["diameter"]
    [50, 80]
    """

    patch_size: int = _schema("patch_size")
    bit_depth: Literal[8, 12, 16] = _schema("bit_depth")
    compression: Literal["none", "zlib", "zstd"] = _schema("compression")
    chunk_size: int = _schema("chunk_size")
    probes: Probes = field(default_factory=Probes)
    classes: tuple[str, ...] = _schema("classes")
    conditions: tuple[Condition, ...] = field(default_factory=_conditions)
    spot_sigma: float | tuple[float, float] = _schema("spot_sigma")
    spot_intensity: float | tuple[float, float] = _schema("spot_intensity")
    spot_cut: float = _schema("spot_cut")
    cluster_step: float | tuple[float, float] = _schema("cluster_step")
    minute_sigma: float | tuple[float, float] = _schema("minute_sigma")
    minute_intensity: float | tuple[float, float] = _schema("minute_intensity")
    cloud_size: float | tuple[float, float] = _schema("cloud_size")
    cloud_intensity: float | tuple[float, float] = _schema("cloud_intensity")
    warp: Mapping[str, Any] = _block("warp")
    nuclei: Mapping[str, Any] = _block("nuclei")
    realism: Mapping[str, Mapping[str, Any]] = _block("realism")
    splits: Mapping[str, Split] = field(default_factory=_splits)

    def __post_init__(self) -> None:
        if self.probes.target == self.probes.reference:
            raise InputError(
                "config", "target and reference probes share a colour", item=f"{KEY}.probes"
            )
        for index, condition in enumerate(self.conditions):
            self._check_condition(index, condition)

    def _check_condition(self, index: int, condition: Condition) -> None:
        """Reject a condition of an unknown class, with an empty range, or with more signals
        than the smallest procedural nucleus holds (discs of radius 2 sigma in the nucleus
        eroded by the largest spot's 2 sigma)."""
        item = f"{KEY}.conditions[{index}] '{condition.name}'"
        if condition.class_ not in self.classes:
            raise InputError(
                "config", f"class '{condition.class_}' is not in {list(self.classes)}", item=item
            )
        for key in (*SIGNAL_KEYS, "cluster_size", "spot_sigma", "spot_intensity"):
            low, high = bounds(self.of(condition, key))
            if low > high:
                raise InputError("config", f"{key} range [{low}, {high}] is reversed", item=item)
        if self.nuclei["source"] != "procedural":
            return
        smallest = bounds(self.nuclei["diameter"])[0]
        sigma = bounds(self.of(condition, "spot_sigma"))[0]
        radius = max(smallest / 2 - 2 * bounds(self.spot_sigma)[1], 0.0)
        capacity = int(radius**2 / (2 * sigma) ** 2)
        most = sum(bounds(getattr(condition, key))[1] for key in SIGNAL_KEYS)
        if most > capacity:
            raise InputError(
                "config",
                f"up to {most:.0f} signals, but the smallest nucleus (diameter {smallest:g} px) "
                f"holds at most {capacity} separate spots of sigma {sigma:g}",
                item=item,
            )

    def of(self, condition: Condition, key: str) -> float | tuple[float, float]:
        """A condition's value of ``key``, or the painter's where the condition leaves it
        (e.g. ``spot_sigma``)."""
        value = getattr(condition, key, None)
        return getattr(self, key) if value is None else value

    def for_split(self, split: str) -> FishPaintSettings:
        """The painter of one split: its ``realism`` and ``nuclei`` changes merged over these."""
        if split not in self.splits:
            raise InputError("config", f"unknown split '{split}'", item=f"{KEY}.splits")
        spec = self.splits[split]
        return replace(
            self,
            realism=deep_merge(self.realism, spec.realism or {}),
            nuclei=deep_merge(self.nuclei, spec.nuclei or {}),
        )

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> FishPaintSettings:
        """The settings of a ``fish.paint`` block with every key given (as the validated
        config has it); a missing or unknown key, at any depth, is an InputError naming it."""
        return typed_settings(cls, block, KEY)
