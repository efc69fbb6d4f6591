"""The painted sets slide calling's models are trained on: whole fields for the nucleus
model (``paint_training_fields``) and a FISH patch set cut from fields as slide calling cuts
its cells (``paint_crop_set``). Kept apart from the calling stages so painting imports no
plotting library (the patch painter's worker processes import it too)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fishline.errors import InputError
from fishline.io import atomic_outputs, write_unit_stack
from fishline.logging import get_logger, progress_bar
from fishline.paint import paint_fields
from fishline.paint.fields import FieldSettings, check_field_painter, paint_field
from fishline.paint.fish import CHANNELS
from fishline.paint.fish_settings import FishPaintSettings
from fishline.paint.nuclei import NucleusLibrary
from fishline.slides.cells import (
    CropSettings,
    crop_cells,
    crop_scale,
    nucleus_table,
    reference_diameter,
)
from fishline.slides.fields import scale_channel

log = get_logger("slides")


def paint_training_fields(
    paint: FishPaintSettings,
    fields: FieldSettings,
    count: int,
    seed: int,
    outdir: str | Path,
) -> Path:
    """Paint ``count`` whole fields (like fish.fields) to train the nucleus model on.

    Writes the painter's sheet and nucleus table plus ``cellpose.tsv``, an image sheet
    (sample, image, dapi, mask) that :func:`fishline.segment.train_cellpose` reads.
    """

    outdir = Path(outdir)
    paint_fields(
        paint,
        replace(fields, n=count),
        seed,
        outdir,
        outdir / "fields.tsv",
        outdir / "nuclei.parquet",
    )
    sheet = pd.read_csv(outdir / "fields.tsv", sep="\t")
    training = sheet[["sample", "image", "dapi", "mask"]]
    with atomic_outputs(outdir / "cellpose.tsv") as (temp,):
        training.to_csv(temp, sep="\t", index=False)
    return outdir / "cellpose.tsv"


def paint_crop_set(
    paint: FishPaintSettings,
    fields: FieldSettings,
    crops: CropSettings,
    split: str,
    seed: int,
    stack: str | Path,
    table: str | Path,
) -> pd.DataFrame:
    """Paint the ``split`` patch set as slide calling sees cells: whole painted fields
    (``fields``) cut into one crop per nucleus clear of the border, with slide calling's zoom,
    framing and intensity scaling (``crops``), until the
    split's ``n`` crops.

    Patches painted one nucleus at a time lack what a field adds (neighbours cut by the crop,
    the brightness spread, defocus, field-wide haze and illumination); a classifier trained on
    these crops meets at call time what it was trained on. Writes the outputs of
    :func:`fishline.paint.paint_patch_set` (a 16-bit stack, as slide calling writes its crops;
    the table has the painter's per-nucleus truth plus ``field``, ``instance`` and
    ``crop_scale``). Field ``k`` is painted from ``SeedSequence([seed, k])``.
    """

    settings = paint.for_split(split)
    check_field_painter(settings)
    if paint.splits[split].stain != "fish":
        raise InputError(
            "config", "crops cut from fields need stain 'fish'", item=f"fish.paint.splits.{split}"
        )
    library = None
    if settings.nuclei["source"] == "library":
        library = NucleusLibrary.from_sheet(settings.nuclei["library"])
    count, size, classes = paint.splits[split].n, settings.patch_size, settings.classes
    reference = crops.diameter or reference_diameter(settings.nuclei)
    top = float((1 << int(settings.bit_depth)) - 1)
    pieces: list[np.ndarray] = []
    records: list[pd.DataFrame] = []
    got = field = 0
    progress = progress_bar(total=count, desc=f"paint {split} from fields", unit="img")
    while got < count:
        if field >= 20 and got == 0:
            raise InputError(
                "config",
                "20 painted fields gave no nucleus clear of the border",
                item="fish.fields",
            )
        rng = np.random.default_rng(np.random.SeedSequence([seed, field]))
        image, labels, nuclei = paint_field(rng, settings, fields, field % len(classes), library)
        channels = np.stack([scale_channel(c, top, crops.intensity) for c in image])
        cells = nucleus_table(labels)
        kept = cells[~cells["border"]].reset_index(drop=True).iloc[: count - got]
        scale = np.array([crop_scale(d, crops.scale, reference, None) for d in kept["diameter"]])
        pieces.append(crop_cells(np.clip(channels, 0, 1), labels, kept, size, scale, crops.outside))
        truth = nuclei.rename(columns={"label": "instance"}).set_index("instance")
        record = truth.loc[kept["cell"].to_numpy()].reset_index()
        record.insert(0, "field", field)
        record["crop_scale"] = np.round(scale, 4)
        records.append(record)
        got += len(kept)
        progress.update(len(kept))
        field += 1
    progress.close()
    frame = pd.concat(records, ignore_index=True)
    frame.insert(0, "index", np.arange(count))
    labels_of = frame["class_name"].map({name: i for i, name in enumerate(classes)})
    frame.insert(1, "label", labels_of.astype(np.int64))
    frame.insert(2, "split", split)
    frame["seed"] = seed
    with atomic_outputs(stack, table) as (stack_temp, table_temp):
        write_unit_stack(stack_temp, np.concatenate(pieces), CHANNELS, settings.probes.target)
        frame.to_parquet(table_temp, index=False)
    log.info(
        "%d %s crops from %d fields; class counts %s",
        count, split, field, frame["class_name"].value_counts().to_dict(),
    )  # fmt: skip
    return frame
