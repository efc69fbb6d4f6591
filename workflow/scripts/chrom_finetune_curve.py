"""Snakemake glue for rule chrom_finetune_curve."""

from fishline.chromosomes.finetune import finetune_curve
from fishline.logging import log_to
from fishline.segment import CellposeTrainSettings, SegmentSettings

with log_to(snakemake.log[0]):
    finetune_curve(
        snakemake.input.start[0],
        snakemake.input.sheet[0],
        snakemake.params.curve,
        CellposeTrainSettings.from_config(snakemake.params.cellpose),
        SegmentSettings.from_config(snakemake.params.segment),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        device=snakemake.params.device,
        table_out=snakemake.output.table,
        figure_out=snakemake.output.figure,
    )
