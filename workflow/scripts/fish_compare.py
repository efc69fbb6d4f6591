"""Snakemake glue for rule fish_compare."""

from fishline.chromosomes.compare import fish_compare
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    fish_compare(
        predictions=snakemake.input.predictions,
        histories=snakemake.input.histories,
        models=snakemake.params.models,
        networks=snakemake.params.networks,
        test_sets=snakemake.params.test_sets,
        classes=snakemake.params.classes,
        outputs=dict(snakemake.output.items()),
    )
