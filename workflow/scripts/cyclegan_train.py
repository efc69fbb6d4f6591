"""Snakemake glue for rule cyclegan_train."""

from fishline.chromosomes.cyclegan import CycleGANSettings, train_cyclegan
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    train_cyclegan(
        snakemake.input.stack,
        snakemake.input.table,
        snakemake.input.source_stack,
        snakemake.input.source_table,
        CycleGANSettings.from_config(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.output.model,
        snakemake.output.history,
        snakemake.params.checkpoint,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
