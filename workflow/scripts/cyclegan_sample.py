"""Snakemake glue for rule cyclegan_sample."""

from fishline.chromosomes.cyclegan import CycleGANSampleSettings, sample_cyclegan
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    sample_cyclegan(
        snakemake.input.model,
        snakemake.input.stack,
        snakemake.input.table,
        CycleGANSampleSettings.from_config(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.output.stack,
        snakemake.output.table,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
