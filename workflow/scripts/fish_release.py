"""Snakemake glue for rule fish_release (make pretrain-fish)."""

from fishline.fish.release import release_classifier
from fishline.logging import log_to
from fishline.model_card import provenance
from fishline.schema import validate

with log_to(snakemake.log[0]):
    defaults = validate({}, "config", "defaults")["fish"]
    keys = ("paint", "train", "models")
    release_classifier(
        snakemake.input.model,
        dict(
            zip(
                snakemake.params.sets,
                zip(snakemake.input.stacks, snakemake.input.tables, strict=True),
                strict=True,
            )
        ),
        snakemake.params.min_certainty,
        provenance(
            snakemake.params.configfiles,
            snakemake.params.seed,
            {"fish": {key: snakemake.params.fish[key] for key in keys}},
            {"fish": {key: defaults[key] for key in keys}},
            snakemake.scriptdir,
        ),
        snakemake.output.model,
        snakemake.output.card,
        snakemake.output.scores,
        train_source=snakemake.params.fish["paint"]["splits"]["train"]["source"],
    )
