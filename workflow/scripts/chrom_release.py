"""Snakemake glue for rule chrom_release (make pretrain)."""

import os
import subprocess

from fishline.config import validate
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path
from fishline.model_card import non_defaults, release_cellpose

with log_to(snakemake.log[0]):
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=snakemake.scriptdir,
    ).stdout.strip()
    release_cellpose(
        snakemake.input.model,
        {
            "painted test": sheet_path(snakemake.input.test),
            **dict(zip(snakemake.params.real, snakemake.input.real, strict=True)),
        },
        snakemake.params.segment,
        {
            "configfiles": ", ".join(
                os.path.relpath(path) for path in snakemake.params.configfiles
            ),
            "commit": commit or "unknown",
            "seed": snakemake.params.seed,
            "settings": non_defaults(
                {"chromosomes": snakemake.params.chromosomes},
                {"chromosomes": validate({}, "config", "defaults")["chromosomes"]},
            ),
        },
        snakemake.output.model,
        snakemake.output.card,
        snakemake.output.scores,
    )
