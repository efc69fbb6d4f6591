"""Snakemake glue for rule ss_ablation."""

from fishline.logging import log_to
from fishline.simsearch.stages import ablation_summary

with log_to(snakemake.log[0]):
    ablation_summary(
        snakemake.input.cells,
        snakemake.input.supervised,
        table=snakemake.output.table,
        html=snakemake.output.html,
        violin=snakemake.output.violin,
    )
