"""Annotation files: what the user (or the simulated user) marked, validated and written
atomically. One format for the browser UI and the workflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fishline.errors import InputError
from fishline.io import atomic_outputs
from fishline.schema import validate


def _check_point(where: str, item: str, point: Mapping[str, Any], shapes: Mapping) -> None:
    image = point["image"]
    if image not in shapes:
        raise InputError(where, f"unknown image '{image}'", item=item)
    height, width = shapes[image]
    if not (0 <= point["x"] < width and 0 <= point["y"] < height):
        raise InputError(
            where,
            f"point ({point['x']}, {point['y']}) is outside image '{image}' ({width} x {height})",
            item=item,
        )


def check_annotations(
    data: Any,
    where: str,
    shapes: Mapping[str, tuple[int, int]],
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Validate annotations against the schema and the images they refer to.

    ``shapes`` maps every image name of the sheet to (height, width); ``class_names``, when
    given, are the only classes allowed. Errors name the entry (e.g. ``classes[1].prototypes[0]``).
    """
    data = validate(data, "annotations", where)
    for index, name in enumerate(data["displayed"]):
        if name not in shapes:
            raise InputError(where, f"unknown image '{name}'", item=f"displayed[{index}]")
    names = [entry["name"] for entry in data["classes"]]
    if len(set(names)) != len(names):
        raise InputError(where, f"class names repeat: {names}", item="classes")
    for index, entry in enumerate(data["classes"]):
        label = f"classes[{index}]"
        if class_names is not None and entry["name"] not in class_names:
            raise InputError(
                where, f"unknown class '{entry['name']}' (known: {class_names})", item=label
            )
        for number, box in enumerate(entry["prototypes"]):
            item = f"{label}.prototypes[{number}]"
            if box["image"] not in shapes:
                raise InputError(where, f"unknown image '{box['image']}'", item=item)
            height, width = shapes[box["image"]]
            if (
                box["x"] < 0
                or box["y"] < 0
                or box["x"] + box["width"] > width
                or box["y"] + box["height"] > height
            ):
                raise InputError(
                    where,
                    f"box x={box['x']} y={box['y']} {box['width']} x {box['height']} is outside "
                    f"image '{box['image']}' ({width} x {height})",
                    item=item,
                )
        for kind in ("positives", "negatives"):
            for number, point in enumerate(entry[kind]):
                _check_point(where, f"{label}.{kind}[{number}]", point, shapes)
    for kind in ("proposed", "not_background"):
        for number, point in enumerate(data["background"][kind]):
            _check_point(where, f"background.{kind}[{number}]", point, shapes)
    return data


def read_annotations(
    path: str | Path,
    shapes: Mapping[str, tuple[int, int]],
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Read and check an annotations JSON file (see :func:`check_annotations`)."""
    path = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read annotations: {error}") from error
    return check_annotations(data, path, shapes, class_names)


def write_annotations(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write annotations as indented JSON, atomically (a killed writer leaves no file)."""
    with atomic_outputs(path) as (temp,):
        temp.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")
