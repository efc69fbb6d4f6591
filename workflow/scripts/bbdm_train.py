"""Snakemake glue for rule bbdm_train."""

from fishline.chromosomes.bbdm import BBDMSettings, train_bbdm
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    train_bbdm(
        snakemake.input.stack,
        snakemake.input.table,
        BBDMSettings.from_config(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.output.model,
        snakemake.output.history,
        snakemake.params.checkpoint,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
