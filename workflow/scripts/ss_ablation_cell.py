"""Snakemake glue for rule ss_ablation_cell."""

from fishline.logging import log_to
from fishline.simsearch.stages import ablation_cell

with log_to(snakemake.log[0]):
    ablation_cell(
        snakemake.input.sheet,
        snakemake.input.features,
        snakemake.wildcards.cell,
        {key: value for key, value in snakemake.params.items() if key != "seed"},
        snakemake.params.seed,
        snakemake.output[0],
    )
