"""Snakemake glue for rule ss_cells."""

from fishline.logging import log_to
from fishline.simsearch.settings import CellCallSettings, SearchSettings
from fishline.simsearch.stages import cell_call_curve

with log_to(snakemake.log[0]):
    cell_call_curve(
        snakemake.input.sheet,
        snakemake.params.channels,
        SearchSettings.from_config(snakemake.params.search),
        CellCallSettings.from_config(snakemake.params.cells),
        snakemake.params.seed,
        snakemake.params.device,
        snakemake.threads,
        dict(snakemake.output.items()),
    )
