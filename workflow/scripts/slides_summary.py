"""Snakemake glue for rule slides_summary."""

from fishline.logging import log_to
from fishline.slides.summary import summarise_set
from fishline.slides.verdicts import CallSettings

with log_to(snakemake.log[0]):
    summarise_set(
        snakemake.input.cells,
        snakemake.input.timing,
        snakemake.input.stacks,
        snakemake.params.classes,
        CallSettings.from_config(snakemake.params.calls),
        snakemake.params.gallery,
        outputs=dict(snakemake.output.items()),
        name=snakemake.wildcards.slide_set,
    )
