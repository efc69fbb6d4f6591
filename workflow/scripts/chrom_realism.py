"""Snakemake glue for rule chrom_realism."""

from fishline.chromosomes.figures import realism_report
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path

with log_to(snakemake.log[0]):
    realism_report(
        sheet_path(snakemake.input.painted),
        dict(zip(snakemake.params.names, snakemake.input.real, strict=True)),
        snakemake.output.tsv,
        snakemake.output.table,
        snakemake.output.figure,
    )
