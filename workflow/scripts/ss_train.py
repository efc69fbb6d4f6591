"""Snakemake glue for rule ss_train."""

from fishline.logging import log_to
from fishline.simsearch.stages import train_model

with log_to(snakemake.log[0]):
    train_model(
        dict(snakemake.input.items()),
        snakemake.wildcards.strategy,
        snakemake.params.train,
        snakemake.params.seed,
        device=snakemake.params.device,
        threads=snakemake.threads,
        model=snakemake.output.model,
        history=snakemake.output.history,
    )
