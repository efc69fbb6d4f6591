"""FISH track: splits, models, test sets and targets (rules in fish.smk)."""

SPLITS = list(config["fish"]["paint"]["splits"])
FIELDS = [f"field_{i:03d}" for i in range(config["fish"]["fields"]["n"])]


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
