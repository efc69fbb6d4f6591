"""Snakemake glue for rule fish_paint_report."""

from fishline import plots
from fishline.logging import log_to
from fishline.paint.fish_settings import FishPaintSettings

with log_to(snakemake.log[0]):
    plots.painter_figures(
        stacks=snakemake.input.stacks,
        tables=snakemake.input.tables,
        fields_sheet=snakemake.input.sheet,
        fields_nuclei=snakemake.input.nuclei,
        paint=FishPaintSettings.from_config(snakemake.params.paint),
        per_class=snakemake.params.per_class,
        seed=snakemake.params.seed,
        outputs=dict(snakemake.output.items()),
    )
