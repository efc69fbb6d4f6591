"""Snakemake glue for rule chrom_paint."""

from pathlib import Path

from fishline.logging import log_to
from fishline.paint.metaphase import paint_spreads
from fishline.paint.spread_settings import SpreadSettings

with log_to(snakemake.log[0]):
    outdir = Path(snakemake.output.spreads)
    paint_spreads(
        SpreadSettings.from_config(snakemake.params.paint),
        split=snakemake.wildcards.chrom_split,
        n=snakemake.params.n,
        seed=snakemake.params.seed,
        outdir=outdir,
        sheet=outdir / "sheet.tsv",
        instances=snakemake.output.instances,
        annotated=snakemake.params.annotated,
    )
