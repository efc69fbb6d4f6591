"""Snakemake glue for rule ss_features."""

from fishline.logging import log_to
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import compute_features

with log_to(snakemake.log[0]):
    compute_features(
        snakemake.input.sheet,
        snakemake.params.channels,
        SearchSettings.from_config(snakemake.params.search),
        snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
        seed=snakemake.params.seed,
    )
