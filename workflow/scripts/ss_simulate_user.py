"""Snakemake glue for rule ss_simulate_user."""

from fishline.logging import log_to
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import SheetImages, simulate_user

with log_to(snakemake.log[0]):
    simulate_user(
        SheetImages(snakemake.input.sheet, snakemake.params.roles, snakemake.params.channels),
        snakemake.input.features,
        snakemake.params.classes,
        snakemake.params.user,
        SearchSettings.from_config(snakemake.params.search),
        snakemake.params.seed,
        snakemake.output[0],
    )
