"""Snakemake glue for rule ss_simulate_user."""

from fishline.logging import log_to
from fishline.simsearch.stages import simulate_user

with log_to(snakemake.log[0]):
    simulate_user(
        snakemake.input.sheet,
        snakemake.input.features,
        snakemake.params.roles,
        snakemake.params.classes,
        snakemake.params.user,
        snakemake.params.search,
        snakemake.params.channels,
        snakemake.params.seed,
        snakemake.output[0],
    )
