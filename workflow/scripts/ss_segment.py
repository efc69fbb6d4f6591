"""Snakemake glue for rule ss_segment."""

from fishline.logging import log_to
from fishline.simsearch.settings import DetectSettings
from fishline.simsearch.stages import SheetImages, segment_test_images

with log_to(snakemake.log[0]):
    segment_test_images(
        SheetImages(snakemake.input.sheet, snakemake.params.roles, snakemake.params.channels),
        snakemake.input.model,
        snakemake.input.annotations,
        DetectSettings.from_config(snakemake.params.detect),
        device=snakemake.params.device,
        threads=snakemake.threads,
        out_dir=snakemake.output[0],
    )
