"""Snakemake glue for rule slides_release (make pretrain-nuclei)."""

import os
import subprocess
import tempfile
from pathlib import Path

from fishline.config import validate
from fishline.logging import log_to
from fishline.model_card import NUCLEI, non_defaults, release_cellpose, stardist_sheet

with log_to(snakemake.log[0]), tempfile.TemporaryDirectory() as folder:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=snakemake.scriptdir,
    ).stdout.strip()
    defaults = validate({}, "config", "defaults")
    release_cellpose(
        snakemake.input.model,
        {"stardist (real)": stardist_sheet(Path(folder))},
        snakemake.params.segment,
        {
            "configfiles": ", ".join(
                os.path.relpath(path) for path in snakemake.params.configfiles
            ),
            "commit": commit or "unknown",
            "seed": snakemake.params.seed,
            "settings": non_defaults(
                {
                    "fish": {key: snakemake.params.fish[key] for key in ("paint", "fields")},
                    "slides": {"cellpose": snakemake.params.cellpose},
                },
                {
                    "fish": {key: defaults["fish"][key] for key in ("paint", "fields")},
                    "slides": {"cellpose": defaults["slides"]["cellpose"]},
                },
            ),
        },
        snakemake.output.model,
        snakemake.output.card,
        snakemake.output.scores,
        NUCLEI,
    )
