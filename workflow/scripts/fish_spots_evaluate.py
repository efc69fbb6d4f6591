"""Snakemake glue for rule fish_spots_evaluate."""

import json
from pathlib import Path

from fishline.evaluation import write_evaluation
from fishline.fish.spots import spot_predictions
from fishline.logging import log_to

with log_to(snakemake.log[0]):
    classes = json.loads(Path(snakemake.input.params).read_text())["classes"]
    write_evaluation(
        spot_predictions(snakemake.input.stack, snakemake.input.table, snakemake.input.params),
        classes,
        snakemake.output.predictions,
        snakemake.output.metrics,
    )
