"""Snakemake glue for rules segment (a painted set) and segment_spread (one real spread)."""

from pathlib import Path

from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.segment import SegmentSettings, segment_sheet

sample = getattr(snakemake.wildcards, "sample", None)  # segment_spread: one sheet row
with log_to(snakemake.log[0]):
    outdir = Path(snakemake.output[0])
    segment_sheet(
        snakemake.input.model,
        sheet_path(snakemake.input.images),
        SegmentSettings.from_config(snakemake.params.settings),
        outdir=outdir,
        masks_sheet=outdir / "masks.tsv",
        threads=snakemake.threads,
        device=snakemake.params.device,
        samples=None if sample is None else [sample],
    )
