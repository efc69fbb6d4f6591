"""Config validation, seeds and input functions shared by all rules."""

from snakemake.exceptions import WorkflowError

from fishline.config import validate as validate_schema
from fishline.errors import InputError
from fishline.seeds import stage_seed as derive_seed

try:
    config.update(
        validate_schema(
            config, "config", ", ".join(map(str, workflow.configfiles)) or "config"
        )
    )
except InputError as error:
    raise WorkflowError(f"invalid config: {error}")

SPLITS = list(config["fish"]["paint"]["splits"])
FIELDS = [f"field_{i:03d}" for i in range(config["fish"]["fields"]["n"])]
CONDA_ENV = "../../envs/fishline.yaml"


def stage_seed(stage, *keys):
    """Seed of one stage (and wildcard values), derived from the global seed."""
    return derive_seed(config["seed"], stage, *keys)


def fish_paint_outputs():
    """Every painted FISH patch set (stack + table)."""
    return expand(
        "results/fish/synthetic/{split}.{ext}", split=SPLITS, ext=["tif", "parquet"]
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
    ]


FISH_MODELS = list(config["fish"]["models"])
SPOT_BASELINE = ["spots"] if config["fish"]["spots"]["enabled"] else []
FISH_TEST_SETS = config["fish"]["evaluate"]["test_sets"]
AUGMENT_STEPS = list(config["fish"]["augment"]["heavy"])
UMAP_SETS = config["fish"]["umap"]["sets"]
for _key, _names in (
    ("fish.umap.sets", UMAP_SETS),
    ("fish.evaluate.test_sets", FISH_TEST_SETS),
):
    if set(_names) - set(SPLITS):
        raise WorkflowError(
            f"invalid config: {_key} names {sorted(set(_names) - set(SPLITS))}, "
            f"which are not in fish.paint.splits {SPLITS}"
        )


def ablation_models():
    """Leave-one-out variants of the ablated model (empty when the ablation is off)."""
    ablation = config["fish"]["ablation"]
    if not ablation["enabled"]:
        return {}
    name = ablation["model"]
    if name not in config["fish"]["models"]:
        raise WorkflowError(
            f"invalid config: fish.ablation.model '{name}' is not in fish.models"
        )
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
            test_set=FISH_TEST_SETS,
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
