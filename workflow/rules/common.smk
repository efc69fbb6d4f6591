"""Config validation, seeds, thread sharing, user sheets and the default targets shared by
every track; each track's settings, input functions and targets are in its own
`<track>_common.smk`, included by its rule file."""

from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

from fishline.config import real_sets_with_truth, simsearch_has_truth, validate_config
from fishline.errors import InputError
from fishline.seeds import stage_seed as derive_seed
from fishline.sheets import read_sample_sheet, sheet_files

try:
    config.update(
        validate_config(config, ", ".join(map(str, workflow.configfiles)) or "config")
    )
except InputError as error:
    raise WorkflowError(f"invalid config: {error}")


CONDA_ENV = "../../envs/fishline.yaml"


def shared_threads(wanted):
    """Threads for a job able to use ``wanted`` threads: all of them, but 1 on a run with
    2 cores or fewer. There a job that needs the whole machine waits while 1-thread jobs keep one
    core busy (measured on 2 cores: fish_paint at 2 threads started 11 minutes late), and a
    second thread speeds a Cellpose training up only 1.6x. Remote executors give no core
    total; there every job gets its own allocation."""
    try:
        cores = workflow.cores
    except WorkflowError:
        return wanted
    return 1 if cores <= 2 else wanted


def stage_seed(stage, *keys):
    """Seed of one stage (and wildcard values), derived from the global seed."""
    return derive_seed(config["seed"], stage, *keys)


def gpus():
    """GPUs for rules that train or predict: one when the configured device is CUDA."""
    return 1 if config["device"] == "cuda" else 0


@cache
def _read_user_sheet(sheet, schema, key):
    try:
        return read_sample_sheet(sheet, schema)
    except InputError as error:
        raise WorkflowError(f"{key}: {error}")


def user_sheet_files(sheet, schema, key, sample=None):
    """The images, masks and label files a user's sheet (config ``key``) names, one
    sample's rows when given: inputs of every rule that reads the sheet, so editing one of
    them reruns exactly what depends on it. A bad sheet stops the run naming the key."""
    frame = _read_user_sheet(str(sheet), schema, key)
    if sample is not None:
        frame = frame[frame["sample"] == sample]
    return sheet_files(frame, schema)


def shipped_file(path):
    """A configured file path; a relative one missing from the working directory is taken
    from the workflow's own folder, so shipped models are found from any working directory.
    """
    shipped = Path(workflow.basedir) / path
    if not Path(path).exists() and shipped.exists():
        return str(shipped)
    return path


def get_final_output():
    """Targets of the default run: every stage's outputs and report figures."""
    return [
        *fish_paint_outputs(),
        "results/fish/fields/sheet.tsv",
        *fish_painter_figures(),
        *fish_classifier_outputs(),
        *chromosome_outputs(),
        *slides_outputs(),
        *chromosomes2_outputs(),
        *simsearch_outputs(),
        "results/report/overview.png",
    ]
