"""Snakemake glue for rule fish_paint: one nucleus per patch, or crops cut from painted fields
(the split's ``source``).

The patch painter spawns worker processes, which import this script as ``__mp_main__``: the
guard keeps them from painting too.
"""

from fishline.logging import log_to
from fishline.paint import paint_patch_set
from fishline.paint.fields import FieldSettings
from fishline.paint.fish_settings import FishPaintSettings
from fishline.slides.cells import CropSettings
from fishline.slides.training_sets import paint_crop_set

if __name__ == "__main__":
    split = snakemake.wildcards.split
    paint = FishPaintSettings.from_config(snakemake.params.paint)
    outputs = {"stack": snakemake.output.stack, "table": snakemake.output.table}
    with log_to(snakemake.log[0]):
        if paint.splits[split].source == "fields":
            paint_crop_set(
                paint,
                FieldSettings.from_config(snakemake.params.fields),
                CropSettings.from_config(snakemake.params.crops),
                split=split,
                seed=snakemake.params.seed,
                **outputs,
            )
        else:
            paint_patch_set(
                paint, split=split, seed=snakemake.params.seed, threads=snakemake.threads, **outputs
            )
