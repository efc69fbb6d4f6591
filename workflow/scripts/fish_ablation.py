"""Snakemake glue for rule fish_ablation."""

from fishline.chromosomes.compare import fish_ablation
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    fish_ablation(
        predictions=snakemake.input.predictions,
        model=snakemake.params.model,
        steps=snakemake.params.steps,
        test_sets=snakemake.params.test_sets,
        table=snakemake.output.table,
        tsv=snakemake.output.tsv,
    )
