"""Snakemake glue for rule cellpose_train."""

from dataclasses import replace

from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.segment import CellposeTrainSettings, train_cellpose

settings = CellposeTrainSettings.from_config(snakemake.params.settings)
if snakemake.input.pretrained:  # a weights file, as the workflow resolved its path
    settings = replace(settings, pretrained=snakemake.input.pretrained[0])

with log_to(snakemake.log[0]):
    train_cellpose(
        sheet_path(snakemake.input.train),
        sheet_path(snakemake.input.val),
        settings,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        device=snakemake.params.device,
        model_out=snakemake.output.model,
        history_out=snakemake.output.history,
    )
