"""Snakemake glue for rule ss_segment."""

from fishline.logging import log_to
from fishline.simsearch.stages import segment_test_images

with log_to(snakemake.log[0]):
    segment_test_images(
        snakemake.input.sheet,
        snakemake.input.model,
        snakemake.input.annotations,
        snakemake.params.roles,
        snakemake.params.detect,
        snakemake.params.channels,
        device=snakemake.params.device,
        threads=snakemake.threads,
        out_dir=snakemake.output[0],
    )
