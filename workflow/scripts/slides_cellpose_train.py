"""Snakemake glue for rule slides_cellpose_train."""

from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.segment import CellposeTrainSettings, train_cellpose

with log_to(snakemake.log[0]):
    train_cellpose(
        sheet_path(snakemake.input.train, "cellpose.tsv"),
        None,
        CellposeTrainSettings.from_config(snakemake.params.settings),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        device=snakemake.params.device,
        model_out=snakemake.output.model,
        history_out=snakemake.output.history,
        object_name="nucleus",
    )
