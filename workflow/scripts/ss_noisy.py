"""Snakemake glue for rule ss_noisy."""

from fishline.logging import log_to
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import SheetImages, annotated_patches

with log_to(snakemake.log[0]):
    annotated_patches(
        SheetImages(snakemake.input.sheet, snakemake.params.roles),
        snakemake.input.features,
        snakemake.input.annotations,
        snakemake.params.classes,
        snakemake.params.noisy,
        SearchSettings.from_config(snakemake.params.search),
        snakemake.params.seed,
        dict(snakemake.output.items()),
    )
