"""Snakemake glue for rule slides_call."""

from fishline.logging import log_to
from fishline.paint.fish_settings import FishPaintSettings
from fishline.slides.stages import SlideSettings, call_sample

with log_to(snakemake.log[0]):
    call_sample(
        snakemake.input.sheet,
        snakemake.wildcards.sample,
        snakemake.input.nuclei,
        snakemake.input.classifier,
        SlideSettings.from_config(snakemake.params.settings),
        FishPaintSettings.from_config(snakemake.params.paint),
        outputs=dict(snakemake.output.items()),
        cell_labels=snakemake.input.get("labels"),
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
