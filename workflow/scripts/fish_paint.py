"""Snakemake glue for rule fish_paint."""

from fishline.logging import log_to
from fishline.paint import paint_patch_set

with log_to(snakemake.log[0]):
    paint_patch_set(
        snakemake.params.paint,
        split=snakemake.wildcards.split,
        seed=snakemake.params.seed,
        stack=snakemake.output.stack,
        table=snakemake.output.table,
        threads=snakemake.threads,
    )
