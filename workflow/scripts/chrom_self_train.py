"""Snakemake glue for rule chrom_self_train."""

from fishline.chromosomes.self_training import self_train
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.segment import CellposeTrainSettings, SegmentSettings

with log_to(snakemake.log[0]):
    self_train(
        snakemake.input.start,
        {
            name: sheet_path(sheet)
            for name, sheet in zip(snakemake.params.sets, snakemake.input.sheets, strict=True)
        },
        sheet_path(snakemake.input.painted[0]) if snakemake.input.painted else None,
        snakemake.params.settings,
        CellposeTrainSettings.from_config(snakemake.params.cellpose),
        SegmentSettings.from_config(snakemake.params.segment),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        device=snakemake.params.device,
        pseudo_out=snakemake.output.pseudo,
        model_out=snakemake.output.model,
        history_out=snakemake.output.history,
    )
