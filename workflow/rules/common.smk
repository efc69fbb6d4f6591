"""Config validation, seeds and input functions shared by all rules."""

from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

from fishline.config import (
    read_sample_sheet,
    real_sets_with_truth,
    sheet_files,
    simsearch_has_truth,
    validate_config,
)
from fishline.errors import InputError
from fishline.seeds import stage_seed as derive_seed

try:
    config.update(
        validate_config(config, ", ".join(map(str, workflow.configfiles)) or "config")
    )
except InputError as error:
    raise WorkflowError(f"invalid config: {error}")

SPLITS = list(config["fish"]["paint"]["splits"])
FIELDS = [f"field_{i:03d}" for i in range(config["fish"]["fields"]["n"])]
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


def fish_paint_outputs():
    """Every painted FISH patch set (stack + table)."""
    return expand(
        "results/fish/synthetic/{split}.{ext}", split=SPLITS, ext=["tif", "parquet"]
    )


def for_field_splits(value):
    """Params function: ``value`` (settings that crops cut from fields depend on) for a split
    whose source is fields, None for single-nucleus splits, so changing it reruns only the
    former."""
    return lambda wc: (
        value
        if config["fish"]["paint"]["splits"][wc.split]["source"] == "fields"
        else None
    )


def fish_painter_figures():
    """Figures of the FISH painter's report section."""
    return expand(
        "results/fish/report/{figure}.png",
        figure=["gallery", "realism", "class_counts", "signal_counts", "fields"],
    )


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


FISH_MODELS = list(config["fish"]["models"])
SPOT_BASELINE = ["spots"] if config["fish"]["spots"]["enabled"] else []
FISH_TEST_SETS = config["fish"]["evaluate"]["test_sets"]
FISH_REAL = dict(config["fish"]["evaluate"]["real"])
FISH_EVAL_SETS = FISH_TEST_SETS + [
    name for name in FISH_REAL if name not in FISH_TEST_SETS
]
AUGMENT_STEPS = list(config["fish"]["augment"]["heavy"])
UMAP_SETS = config["fish"]["umap"]["sets"]


def fish_test_set(wildcards):
    """Stack and table of a test set: a painted split or a labelled real patch set."""
    folder = "real" if wildcards.test_set in FISH_REAL else "synthetic"
    return {
        "stack": f"results/fish/{folder}/{wildcards.test_set}.tif",
        "table": f"results/fish/{folder}/{wildcards.test_set}.parquet",
    }


def ablation_models():
    """Leave-one-out variants of the ablated model (empty when the ablation is off)."""
    ablation = config["fish"]["ablation"]
    if not ablation["enabled"]:
        return {}
    name = ablation["model"]
    base = config["fish"]["models"][name]
    variants = {f"{name}_no_augment": {**base, "augment": "none"}}
    for step in AUGMENT_STEPS:
        variants[f"{name}_without_{step}"] = {**base, "augment_off": [step]}
    return variants


ALL_FISH_MODELS = {**config["fish"]["models"], **ablation_models()}


def fish_model_spec(name):
    """Training settings of one model: fish.train with the model's own changes."""
    return {**config["fish"]["train"], **ALL_FISH_MODELS[name]}


def ablation_predictions():
    """Predictions of the ablated model and all its variants on every test set."""
    names = [config["fish"]["ablation"]["model"], *ablation_models()]
    return expand(
        "results/fish/eval/{model}/{test_set}.parquet",
        model=names,
        test_set=FISH_TEST_SETS,
    )


def gpus():
    """GPUs for rules that train or predict: one when the configured device is CUDA."""
    return 1 if config["device"] == "cuda" else 0


def fish_classifier_outputs():
    """Evaluation metrics of every model on every FISH test set, and the comparison."""
    return [
        *expand(
            "results/fish/eval/{model}/{test_set}.json",
            model=FISH_MODELS + SPOT_BASELINE,
            test_set=FISH_EVAL_SETS,
        ),
        *expand(
            "results/fish/compare/{name}",
            name=[
                "retention.html",
                "summary.tsv",
                "calibration.png",
                "threshold.png",
                "confusion.png",
                "training.png",
            ],
        ),
        *(
            expand("results/fish/compare/umap_{model}.png", model=FISH_MODELS)
            if config["fish"]["umap"]["enabled"]
            else []
        ),
        *(
            ["results/fish/compare/ablation.html"]
            if config["fish"]["ablation"]["enabled"]
            else []
        ),
    ]


CHROM_SPLITS = [
    name
    for name, count in config["chromosomes"]["spreads"].items()
    if count > 0 or name != "unannotated"
]
CHROM_ANNOTATED = [name for name in CHROM_SPLITS if name != "unannotated"]
CHROM_REAL = dict(config["chromosomes"]["real"])
CHROM_SETS = CHROM_SPLITS + list(CHROM_REAL)


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


CHROM_REAL_SCORED = real_sets_with_truth(config)
CHROM_SCORED = CHROM_ANNOTATED + CHROM_REAL_SCORED


def chrom_set_files(name, sample=None):
    """The files a real metaphase set's sheet names, one sample's when given (none for
    painted sets)."""
    if name in CHROM_REAL:
        return user_sheet_files(
            CHROM_REAL[name], "metaphase_sheet", f"chromosomes.real.{name}", sample
        )
    return []


def chrom_real_spreads(wildcards):
    """A real set's spreads, each segmented by its own job (a corrupt image fails only its
    own spread's job; the others are kept for the rerun)."""
    sheet = CHROM_REAL[wildcards.chrom_set]
    rows = _read_user_sheet(
        str(sheet), "metaphase_sheet", f"chromosomes.real.{wildcards.chrom_set}"
    )
    return [
        f"results/chromosomes/segment/{wildcards.chrom_set}.spreads/{sample}"
        for sample in rows["sample"]
    ]


def cellpose_training_files():
    """The files of the user's own Cellpose training sheet, when one is configured."""
    sheet = config["chromosomes"]["cellpose"]["sheet"]
    if not sheet:
        return []
    return user_sheet_files(sheet, "metaphase_sheet", "chromosomes.cellpose.sheet")


def painted_spreads(name):
    """The folder of a painted metaphase set (its images, truth masks and sheet.tsv)."""
    return f"results/chromosomes/synthetic/{name}"


def cellpose_training_input():
    """The user's own masks when configured, otherwise the painted train set."""
    return config["chromosomes"]["cellpose"]["sheet"] or painted_spreads("train")


def shipped_file(path):
    """A configured file path; a relative one missing from the working directory is taken
    from the workflow's own folder, so shipped models are found from any working directory.
    """
    shipped = Path(workflow.basedir) / path
    if not Path(path).exists() and shipped.exists():
        return str(shipped)
    return path


def cellpose_pretrained_input():
    """The weights file cellpose_train starts from when the setting is a path (a Cellpose
    model name is looked up in Cellpose's own folder at run time)."""
    pretrained = config["chromosomes"]["cellpose"]["pretrained"]
    if not pretrained or not (Path(pretrained).suffix or "/" in pretrained):
        return []
    return [shipped_file(pretrained)]


def _finetune_curve_set():
    """The real set the fine-tuning curve uses, or None when the curve is off."""
    curve = config["chromosomes"]["finetune_curve"]
    if not curve["enabled"]:
        return None
    return curve["set"] or next(iter(CHROM_REAL_SCORED))


CHROM_CURVE_SET = _finetune_curve_set()


def finetune_start_input():
    """The model the fine-tuning curve starts from: the pretrained weights file when one is
    set (the shipped model by default), else the model the workflow trains."""
    return cellpose_pretrained_input() or ["results/chromosomes/models/cellpose.pt"]


def chrom_truth_input(wildcards):
    """Painter truth for crops of annotated painted sets (withheld for the unannotated)."""
    if wildcards.chrom_set in CHROM_ANNOTATED:
        return f"results/chromosomes/synthetic/{wildcards.chrom_set}.instances.parquet"
    return []


def chromosome_outputs():
    """Crops of every set, segmentation scores and the chromosome report section."""
    return [
        *expand(
            "results/chromosomes/crops/{chrom_set}.{ext}",
            chrom_set=CHROM_SETS,
            ext=["tif", "parquet"],
        ),
        *expand(
            "results/chromosomes/report/{name}",
            name=[
                "spreads.png",
                "gallery.png",
                "crop_counts.html",
                "segmentation.html",
            ],
        ),
        *expand(
            "results/chromosomes/report/overlay_{chrom_set}.png", chrom_set=CHROM_SETS
        ),
        *(["results/chromosomes/report/realism.html"] if CHROM_REAL_SCORED else []),
        *(["results/chromosomes/report/finetune_curve.png"] if CHROM_CURVE_SET else []),
    ]
