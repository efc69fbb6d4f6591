"""Snakemake glue for rule bbdm_sample."""

from fishline.chromosomes.bbdm import BBDMSampleSettings, sample_bbdm
from fishline.chromosomes.figures import crop_gallery
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    sample_bbdm(
        snakemake.input.model,
        snakemake.input.stack,
        snakemake.input.table,
        BBDMSampleSettings.from_config(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.output.stack,
        snakemake.output.table,
        generator_name="bbdm",
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
    crop_gallery(
        {
            "real train": (snakemake.input.train_stack, snakemake.input.train_table),
            "BBDM": (snakemake.output.stack, snakemake.output.table),
        },
        snakemake.output.gallery,
        snakemake.params.gallery,
        snakemake.params.seed,
    )
