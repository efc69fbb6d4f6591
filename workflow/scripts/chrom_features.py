"""Snakemake glue for rule chrom_features."""

from fishline.chromosomes.classifier import extract_features
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    extract_features(
        snakemake.input.model,
        {snakemake.wildcards.feature_set: (snakemake.input.stack, snakemake.input.table)},
        snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
