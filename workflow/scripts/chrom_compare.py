"""Snakemake glue for rule chrom_compare."""

from fishline.chromosomes.classifier import compare_table
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    compare_table(
        dict(zip(map(tuple, snakemake.params.variants), snakemake.input, strict=True)),
        snakemake.output.table,
        snakemake.output.html,
    )
