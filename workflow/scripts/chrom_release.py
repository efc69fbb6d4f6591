"""Snakemake glue for rule chrom_release (make pretrain)."""

from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.model_card import provenance, release_cellpose
from fishline.schema import validate
from fishline.segment import SegmentSettings

with log_to(snakemake.log[0]):
    release_cellpose(
        snakemake.input.model,
        {
            "painted test": sheet_path(snakemake.input.test),
            **dict(zip(snakemake.params.real, snakemake.input.real, strict=True)),
        },
        SegmentSettings.from_config(snakemake.params.segment),
        provenance(
            snakemake.params.configfiles,
            snakemake.params.seed,
            {"chromosomes": snakemake.params.chromosomes},
            {"chromosomes": validate({}, "config", "defaults")["chromosomes"]},
            snakemake.scriptdir,
        ),
        snakemake.output.model,
        snakemake.output.card,
        snakemake.output.scores,
    )
