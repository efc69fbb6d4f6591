"""Snakemake glue for rule slides_release (make pretrain-nuclei)."""

import tempfile
from pathlib import Path

from fishline.logging import log_to
from fishline.model_card import NUCLEI, provenance, release_cellpose, stardist_sheet
from fishline.schema import validate
from fishline.segment import SegmentSettings

with log_to(snakemake.log[0]), tempfile.TemporaryDirectory() as folder:
    defaults = validate({}, "config", "defaults")
    release_cellpose(
        snakemake.input.model,
        {"stardist (real)": stardist_sheet(Path(folder))},
        SegmentSettings.from_config(snakemake.params.segment),
        provenance(
            snakemake.params.configfiles,
            snakemake.params.seed,
            {
                "fish": {key: snakemake.params.fish[key] for key in ("paint", "fields")},
                "slides": {"cellpose": snakemake.params.cellpose},
            },
            {
                "fish": {key: defaults["fish"][key] for key in ("paint", "fields")},
                "slides": {"cellpose": defaults["slides"]["cellpose"]},
            },
            snakemake.scriptdir,
        ),
        snakemake.output.model,
        snakemake.output.card,
        snakemake.output.scores,
        NUCLEI,
    )
