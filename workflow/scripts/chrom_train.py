"""Snakemake glue for rule chrom_train."""

from fishline.chromosomes.classifier import ClassifierSettings, train_classifiers
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    synthetic = []
    if hasattr(snakemake.input, "synthetic_stack"):
        synthetic.append(
            (
                snakemake.input.synthetic_stack,
                snakemake.input.synthetic_table,
                snakemake.input.get("kept"),
            )
        )
    train_classifiers(
        (snakemake.input.train_stack, snakemake.input.train_table),
        synthetic,
        (snakemake.input.test_stack, snakemake.input.test_table),
        ClassifierSettings.from_config(snakemake.params.settings),
        snakemake.params.augmented,
        snakemake.params.seeds,
        snakemake.output.models,
        snakemake.output.metrics,
        snakemake.output.predictions,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
