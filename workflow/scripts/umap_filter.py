"""Snakemake glue for rule umap_filter."""

from fishline.chromosomes.filter import FilterOutputs, FilterSettings, SyntheticSet, umap_filter
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    generators = snakemake.params.generators
    umap_filter(
        snakemake.input.real,
        (snakemake.input.train_stack, snakemake.input.train_table),
        {
            g: SyntheticSet(
                snakemake.input[f"{g}_features"],
                snakemake.input[f"{g}_stack"],
                snakemake.input[f"{g}_table"],
            )
            for g in generators
        },
        FilterSettings.from_config(snakemake.params.settings),
        snakemake.params.seed,
        FilterOutputs(
            kept=dict(zip(generators, snakemake.output.kept, strict=True)),
            coordinates=snakemake.output.coordinates,
            summary=snakemake.output.summary,
            summary_html=snakemake.output.summary_html,
            umap_figure=snakemake.output.umap,
            ssim_figure=snakemake.output.ssim,
        ),
        threads=snakemake.threads,
    )
