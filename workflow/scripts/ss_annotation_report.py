"""Snakemake glue for rule ss_annotation_report."""

from fishline.logging import log_to
from fishline.simsearch.stages import annotation_report

with log_to(snakemake.log[0]):
    annotation_report(
        snakemake.input.sheet,
        snakemake.input.features,
        snakemake.input.annotations,
        snakemake.params.channels,
        correlation=snakemake.output.correlation,
        proposals=snakemake.output.proposals,
    )
