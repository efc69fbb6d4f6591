"""Snakemake glue for rule chrom_report."""

from fishline.chromosomes.figures import (
    crop_counts,
    crop_gallery,
    segmentation_table,
    spread_examples,
)
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path

with log_to(snakemake.log[0]):
    sets = snakemake.params.sets
    stacks = dict(zip(sets, snakemake.input.stacks, strict=True))
    tables = dict(zip(sets, snakemake.input.tables, strict=True))
    spread_examples(sheet_path(snakemake.input.spreads), snakemake.output.spreads)
    crop_gallery(
        {name: (stacks[name], tables[name]) for name in sets},
        snakemake.output.gallery,
        snakemake.params.report["gallery_per_class"],
        snakemake.params.seed,
    )
    crop_counts(tables, snakemake.output.counts_tsv, snakemake.output.counts)
    segmentation_table(
        dict(zip(snakemake.params.scored, snakemake.input.metrics, strict=True)),
        snakemake.output.segmentation_tsv,
        snakemake.output.segmentation,
        target=0.9,
        before_self_training=dict(
            zip(
                snakemake.params.before_self_training,
                snakemake.input.before_self_training,
                strict=True,
            )
        ),
    )
