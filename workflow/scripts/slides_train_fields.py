"""Snakemake glue for rule slides_train_fields."""

from fishline.logging import log_to
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings
from fishline.slides.training_sets import paint_training_fields

with log_to(snakemake.log[0]):
    paint_training_fields(
        FishPaintSettings.from_config(snakemake.params.paint),
        FieldSettings.from_config(snakemake.params.fields),
        count=snakemake.params.n_fields,
        seed=snakemake.params.seed,
        outdir=snakemake.output[0],
    )
