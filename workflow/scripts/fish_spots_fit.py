"""Snakemake glue for rule fish_spots_fit."""

from fishline.fish.spots import fit_spot_counter
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    fit_spot_counter(
        snakemake.input.stack,
        snakemake.input.table,
        classes=snakemake.params.classes,
        upper_counts=snakemake.params.spots["upper_counts"],
        candidates=snakemake.params.spots["candidates"],
        params_path=snakemake.output.params,
    )
