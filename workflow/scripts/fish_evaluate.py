"""Snakemake glue for rule fish_evaluate."""

from fishline.fish.classifier import evaluate_fish_model
from fishline.logging import log_to

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
