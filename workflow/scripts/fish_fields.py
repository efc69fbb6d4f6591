"""Snakemake glue for rule fish_fields."""

from pathlib import Path

from fishline.logging import log_to
from fishline.paint import paint_fields
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings

with log_to(snakemake.log[0]):
    paint_fields(
        FishPaintSettings.from_config(snakemake.params.paint),
        FieldSettings.from_config(snakemake.params.fields),
        seed=snakemake.params.seed,
        outdir=Path(snakemake.output.sheet).parent,
        sheet=snakemake.output.sheet,
        nuclei_table=snakemake.output.nuclei,
    )
