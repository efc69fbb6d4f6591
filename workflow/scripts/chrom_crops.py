"""Snakemake glue for rule chrom_crops."""

from fishline.chromosomes.crops import ChromosomeCropSettings, crop_set
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path

with log_to(snakemake.log[0]):
    crop_set(
        sheet_path(snakemake.input.segmented, "masks.tsv"),
        ChromosomeCropSettings.from_config(snakemake.params.settings),
        snakemake.wildcards.chrom_set,
        snakemake.output.stack,
        snakemake.output.table,
        instances=snakemake.input.truth or None,
    )
