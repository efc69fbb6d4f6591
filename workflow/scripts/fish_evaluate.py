"""Snakemake glue for rule fish_evaluate."""

from fishline.logging import log_to
from fishline.train.fish import evaluate_fish_model

with log_to(snakemake.log[0]):
    evaluate_fish_model(
        snakemake.input.model,
        snakemake.input.stack,
        snakemake.input.table,
        predictions_path=snakemake.output.predictions,
        metrics_path=snakemake.output.metrics,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
