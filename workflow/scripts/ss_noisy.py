"""Snakemake glue for rule ss_noisy."""

from fishline.logging import log_to
from fishline.simsearch.stages import annotated_patches

with log_to(snakemake.log[0]):
    annotated_patches(
        snakemake.input.sheet,
        snakemake.input.features,
        snakemake.input.annotations,
        snakemake.params.roles,
        snakemake.params.classes,
        snakemake.params.noisy,
        snakemake.params.search,
        snakemake.params.seed,
        dict(snakemake.output.items()),
    )
