"""Snakemake glue for rule fish_real_patches."""

from fishline.fish.real_patches import real_patch_set
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    real_patch_set(
        snakemake.input[0],
        snakemake.params.classes,
        snakemake.params.probes,
        snakemake.params.size,
        snakemake.output.stack,
        snakemake.output.table,
    )
