"""Snakemake glue for rule umap_filter."""

from fishline.chromosomes.filter import umap_filter
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    generators = snakemake.params.generators
    umap_filter(
        snakemake.input.real,
        {g: snakemake.input[f"{g}_features"] for g in generators},
        {g: (snakemake.input[f"{g}_stack"], snakemake.input[f"{g}_table"]) for g in generators},
        (snakemake.input.train_stack, snakemake.input.train_table),
        snakemake.params.settings,
        snakemake.params.seed,
        dict(zip(generators, snakemake.output.kept, strict=True)),
        snakemake.output.coordinates,
        snakemake.output.summary,
        snakemake.output.summary_html,
        snakemake.output.umap,
        snakemake.output.ssim,
        threads=snakemake.threads,
    )
