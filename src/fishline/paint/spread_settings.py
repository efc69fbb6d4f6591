"""Typed settings of the metaphase painter (config block ``chromosomes.paint``), one frozen
dataclass per part, every default the schema's (what each key means: config/README.md).
Values the schema cannot check (empty ranges, rods wider than long, a chromosome painted
twice) are an InputError naming the key when the settings are made. Change a default with
:func:`dataclasses.replace`::

    settings = SpreadSettings()
    settings = replace(settings, touching=0.3, brightness=replace(settings.brightness, gradient=0))

The optics (``realism``, ``warp``) and the interphase nuclei stay mappings: the FISH
painter's optics and nucleus code read them, shared by both painters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fishline.errors import InputError
from fishline.paint.draws import bounds
from fishline.schema import default, setting_default, typed_settings

KEY = "chromosomes.paint"


def _schema(key: str) -> Any:
    """The field default of ``chromosomes.paint.<key>`` (:func:`setting_default`)."""
    return setting_default(f"{KEY}.{key}")


def _block(key: str) -> Any:
    """A mapping field's default factory: a fresh copy of the schema's block."""
    return field(default_factory=lambda: default(f"{KEY}.{key}"))


@dataclass(frozen=True)
class Brightness:
    """DAPI brightness between the chromosomes of a spread: the log-normal spread's SD and
    the share of its variance in a ramp across the spread."""

    spread: float | tuple[float, float] = _schema("brightness.spread")
    gradient: float | tuple[float, float] = _schema("brightness.gradient")


@dataclass(frozen=True)
class Translocations:
    """Reciprocal translocations: Poisson rate per spread, kind weights, break position."""

    rate: float = _schema("translocations.rate")
    kinds: Mapping[str, float] = _block("translocations.kinds")
    breakpoint: float | tuple[float, float] = _schema("translocations.breakpoint")


@dataclass(frozen=True)
class SpreadDebris:
    """Small bright DAPI specks on the background."""

    count: float | tuple[float, float] = _schema("debris.count")
    sigma: float | tuple[float, float] = _schema("debris.sigma")
    intensity: float | tuple[float, float] = _schema("debris.intensity")


@dataclass(frozen=True)
class SpreadSettings:
    """What the metaphase painter draws (``chromosomes.paint``).

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(SpreadSettings(), count=(46, 46)).count
    (46, 46)
    """

    size: tuple[int, int] = _schema("size")
    bit_depth: int = _schema("bit_depth")
    count: float | tuple[float, float] = _schema("count")
    xx_fraction: float = _schema("xx_fraction")
    length: float | tuple[float, float] = _schema("length")
    length_jitter: float = _schema("length_jitter")
    width: float | tuple[float, float] = _schema("width")
    constriction: float | tuple[float, float] = _schema("constriction")
    bend: float | tuple[float, float] = _schema("bend")
    kink: float = _schema("kink")
    kink_angle: float | tuple[float, float] = _schema("kink_angle")
    banding: float | tuple[float, float] = _schema("banding")
    chromatids: float | tuple[float, float] = _schema("chromatids")
    intensity: float | tuple[float, float] = _schema("intensity")
    brightness: Brightness = field(default_factory=Brightness)
    paint_intensity: float | tuple[float, float] = _schema("paint_intensity")
    paints: Mapping[str, list[int]] = _block("paints")
    spread_radius: float | tuple[float, float] = _schema("spread_radius")
    gap: int = _schema("gap")
    touching: float = _schema("touching")
    crossing: float = _schema("crossing")
    max_overlap: float = _schema("max_overlap")
    crossing_at: Literal["anywhere", "middle"] = _schema("crossing_at")
    crossing_mask: Literal["neither", "top"] = _schema("crossing_mask")
    translocations: Translocations = field(default_factory=Translocations)
    nuclei: Mapping[str, Any] = _block("nuclei")
    debris: SpreadDebris = field(default_factory=SpreadDebris)
    warp: Mapping[str, Any] = _block("warp")
    realism: Mapping[str, Mapping[str, Any]] = _block("realism")

    def __post_init__(self) -> None:
        ranges = {
            "count": self.count,
            "length": self.length,
            "width": self.width,
            "constriction": self.constriction,
            "bend": self.bend,
            "kink_angle": self.kink_angle,
            "banding": self.banding,
            "chromatids": self.chromatids,
            "intensity": self.intensity,
            "brightness.spread": self.brightness.spread,
            "brightness.gradient": self.brightness.gradient,
            "paint_intensity": self.paint_intensity,
            "spread_radius": self.spread_radius,
            "translocations.breakpoint": self.translocations.breakpoint,
            **{f"nuclei.{k}": v for k, v in self.nuclei.items()},
            "debris.count": self.debris.count,
            "debris.sigma": self.debris.sigma,
            "debris.intensity": self.debris.intensity,
        }
        for key, value in ranges.items():
            low, high = bounds(value)
            if low > high:
                raise InputError(
                    "config", f"range [{low:g}, {high:g}] is empty", item=f"{KEY}.{key}"
                )
        if bounds(self.count)[0] < 2:
            raise InputError(
                "config", "a spread needs at least its 2 sex chromosomes", f"{KEY}.count"
            )
        longest = bounds(self.length)[0]
        if bounds(self.width)[1] >= longest:
            raise InputError(
                "config",
                f"width up to {bounds(self.width)[1]:g} px is not below the length of "
                f"chromosome 1 ({longest:g} px at the lowest length)",
                item=f"{KEY}.width",
            )
        seen: dict[int, str] = {}
        for colour, numbers in self.paints.items():
            for number in numbers:
                if number in seen:
                    raise InputError(
                        "config",
                        f"chromosome {number} is painted both {seen[number]} and {colour}",
                        item=f"{KEY}.paints",
                    )
                seen[number] = colour
        exchanges = self.translocations
        if exchanges.rate > 0 and sum(exchanges.kinds.values()) <= 0:
            raise InputError(
                "config", "all exchange kinds have weight 0", item=f"{KEY}.translocations.kinds"
            )

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> SpreadSettings:
        """The settings of a ``chromosomes.paint`` block with every key given (as the
        validated config has it); a missing or unknown key, at any depth, is an InputError
        naming it."""
        return typed_settings(cls, block, KEY)
