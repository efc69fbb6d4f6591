"""Snakemake glue for rule ss_detect."""

from fishline.logging import log_to
from fishline.simsearch.settings import DetectSettings
from fishline.simsearch.stages import SheetImages, detect_test_images

with log_to(snakemake.log[0]):
    detect_test_images(
        SheetImages(snakemake.input.sheet, snakemake.params.roles, snakemake.params.channels),
        snakemake.input.model,
        snakemake.input.annotations,
        DetectSettings.from_config(snakemake.params.detect),
        device=snakemake.params.device,
        threads=snakemake.threads,
        detections=snakemake.output.detections,
        overlay=snakemake.output.overlay,
    )
