"""Snakemake glue for rule segment_collect."""

from pathlib import Path

from fishline.logging import log_to
from fishline.metaphase_sheet import collect_segmentations

with log_to(snakemake.log[0]):
    outdir = Path(snakemake.output[0])
    collect_segmentations(snakemake.input, outdir, outdir / "masks.tsv")
