"""Snakemake glue for rule ss_evaluate."""

from fishline.logging import log_to
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import evaluate_model

with log_to(snakemake.log[0]):
    evaluate_model(
        snakemake.input.sheet,
        snakemake.input.detections,
        snakemake.params.roles,
        snakemake.params.classes,
        SearchSettings.from_config(snakemake.params.search),
        snakemake.params.evaluate,
        metrics=snakemake.output.metrics,
        curve=snakemake.output.curve,
    )
