"""Snakemake glue for rule ss_supervised_patches."""

from fishline.logging import log_to
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import SheetImages, supervised_patch_set

with log_to(snakemake.log[0]):
    supervised_patch_set(
        SheetImages(snakemake.input.sheet, snakemake.params.roles, snakemake.params.channels),
        snakemake.params.classes,
        SearchSettings.from_config(snakemake.params.search),
        snakemake.params.noisy,
        snakemake.params.seed,
        snakemake.output.stack,
        snakemake.output.table,
    )
