"""Snakemake glue for rule fish_paint.

The painter spawns worker processes, which import this script as ``__mp_main__``: the guard
keeps them from painting too.
"""

from fishline.logging import log_to
from fishline.paint import paint_patch_set

if __name__ == "__main__":
    with log_to(snakemake.log[0]):
        paint_patch_set(
            snakemake.params.paint,
            split=snakemake.wildcards.split,
            seed=snakemake.params.seed,
            stack=snakemake.output.stack,
            table=snakemake.output.table,
            threads=snakemake.threads,
        )
