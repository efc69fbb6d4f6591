"""Snakemake glue for rule report_overview."""

from fishline.logging import log_to
from fishline.overview import headline_figure

with log_to(snakemake.log[0]):
    headline_figure(
        snakemake.output.figure,
        fish_summary=snakemake.input.fish,
        segmentation=dict(
            zip(snakemake.params.segmentation_sets, snakemake.input.segmentation, strict=True)
        ),
        slides=dict(zip(snakemake.params.slide_sets, snakemake.input.slides, strict=True)),
        generation=snakemake.input.generation[0] if snakemake.input.generation else None,
        simsearch=dict(zip(snakemake.params.strategies, snakemake.input.simsearch, strict=True)),
        title="CPU demo: small trainings (see the landing page)" if snakemake.params.demo else "",
    )
