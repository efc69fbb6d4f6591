"""Snakemake glue for rule fish_train."""

from fishline.fish.classifier import FishTrainSettings, train_fish_model
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    train_fish_model(
        snakemake.input.stack,
        snakemake.input.table,
        method=FishTrainSettings.from_config(snakemake.params.method, snakemake.wildcards.model),
        augmentations=snakemake.params.augment,
        classes=snakemake.params.classes,
        seed=snakemake.params.seed,
        model_path=snakemake.output.model,
        history_path=snakemake.output.history,
        checkpoint_path=snakemake.params.checkpoint,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
