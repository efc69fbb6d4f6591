"""Snakemake glue for rule chrom_self_train_evaluate: the pseudo-masks of one set scored
against its truth, which is the painted model's score before self-training."""

from pathlib import Path

from fishline.instances import evaluate_segmentation
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    evaluate_segmentation(
        Path(snakemake.input[0]) / snakemake.wildcards.chrom_set / "masks.tsv",
        snakemake.output.metrics,
        snakemake.output.per_image,
    )
