"""Snakemake glue for rule umap_filter."""

from fishline.filter import umap_filter
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    umap_filter(
        snakemake.input.real,
        {"bbdm": snakemake.input.bbdm},
        {"bbdm": (snakemake.input.bbdm_stack, snakemake.input.bbdm_table)},
        (snakemake.input.train_stack, snakemake.input.train_table),
        snakemake.params.settings,
        snakemake.params.seed,
        {"bbdm": snakemake.output.kept},
        snakemake.output.coordinates,
        snakemake.output.summary,
        snakemake.output.summary_html,
        snakemake.output.umap,
        snakemake.output.ssim,
        threads=snakemake.threads,
    )
