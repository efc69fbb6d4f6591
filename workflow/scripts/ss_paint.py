"""Snakemake glue for rule ss_paint."""

from pathlib import Path

from fishline.logging import log_to
from fishline.paint.cellfields import CellFieldSettings, paint_cell_fields

if __name__ == "__main__":
    with log_to(snakemake.log[0]):
        paint_cell_fields(
            CellFieldSettings.from_config(snakemake.params.paint),
            snakemake.params.seed,
            Path(snakemake.output.sheet).parent,
        )
