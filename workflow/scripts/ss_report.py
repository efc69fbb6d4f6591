"""Snakemake glue for rule ss_report."""

from fishline.logging import log_to
from fishline.simsearch.stages import detection_report

with log_to(snakemake.log[0]):
    detection_report(
        snakemake.params.strategies,
        snakemake.input.metrics,
        snakemake.input.curves,
        summary=snakemake.output.summary,
        figure=snakemake.output.curves,
    )
