"""Snakemake glue for rule fish_umap."""

from fishline.fish.umap import fish_umap
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    fish_umap(
        snakemake.input.model,
        dict(
            zip(
                snakemake.params.names,
                zip(snakemake.input.stacks, snakemake.input.tables, strict=True),
                strict=True,
            )
        ),
        max_points=snakemake.params.max_points,
        seed=snakemake.params.seed,
        figure=snakemake.output.figure,
        table=snakemake.output.table,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
