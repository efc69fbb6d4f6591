"""Shared by the workflow tests: running Snakemake on the repository's Snakefile, reading a
dry run's plan, and the default DAG's jobs by track."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fishline.train.loop import CPU_BF16_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
# Every job of the default DAG, as a dry run from scratch plans it, by track.
FISH_PLAN = {
    "fish_paint": 5,
    "fish_fields": 1,
    "fish_paint_report": 1,
    "fish_train": 2,
    "fish_evaluate": 4,
    "fish_spots_fit": 1,
    "fish_spots_evaluate": 2,
    "fish_umap": 2,
    "fish_compare": 1,
}
CHROMOSOME_PLAN = {
    "chrom_paint": 4,
    "cellpose_train": 1,
    "segment": 4,
    "segment_evaluate": 4,
    "chrom_crops": 4,
    "chrom_report": 1,
}
SLIDES_PLAN = {"slides_call": 3, "slides_summary": 1}  # nuclei: the shipped model
# With slides.cellpose.model null (the tiny config) the nucleus model is trained here.
SLIDES_TRAINING_PLAN = {"slides_train_fields": 1, "slides_cellpose_train": 1}
CHROMOSOME2_PLAN = {
    "bbdm_train": 1,
    "bbdm_sample": 1,
    "chrom_train": 3,  # real, BBDM, filtered BBDM; augmented (config/config.yaml)
    "chrom_features": 2,
    "umap_filter": 1,
    "chrom_compare": 1,
}
SIMSEARCH_PLAN = {
    "ss_paint": 1,
    "ss_features": 1,
    "ss_simulate_user": 1,
    "ss_noisy": 1,
    "ss_supervised_patches": 1,
    "ss_train": 2,
    "ss_detect": 2,
    "ss_evaluate": 2,
    "ss_annotation_report": 1,
    "ss_report": 1,
    "ss_cells": 1,
}
# The report's headline figure: replanned whenever a track's summary table is.
OVERVIEW_PLAN = {"report_overview": 1}
FULL_PLAN = {
    **FISH_PLAN,
    **CHROMOSOME_PLAN,
    **CHROMOSOME2_PLAN,
    **SLIDES_PLAN,
    **SIMSEARCH_PLAN,
    **OVERVIEW_PLAN,
    "all": 1,
}


def job_environment(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a workflow run: this venv first, this checkout's package (not
    whichever one the venv was installed from), and the CPU precision switch passed on."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    if CPU_BF16_VARIABLE in os.environ:
        env[CPU_BF16_VARIABLE] = os.environ[CPU_BF16_VARIABLE]
    return {**env, **extra}


def snakemake(workdir: Path, *args: str, config: Path = TINY) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in ``workdir`` with ``config``."""
    command = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        *args,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=1800,
        env=job_environment(workdir),
    )


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table (empty when nothing to do)."""
    assert result.returncode == 0, result.stderr + result.stdout
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
