"""Chromosome track I: painted and real metaphase sets, Cellpose inputs and targets (rules in
chromosomes.smk)."""

CHROM_SPLITS = [
    name
    for name, count in config["chromosomes"]["spreads"].items()
    if count > 0 or name != "unannotated"
]
CHROM_ANNOTATED = [name for name in CHROM_SPLITS if name != "unannotated"]
CHROM_REAL = dict(config["chromosomes"]["real"])
CHROM_SETS = CHROM_SPLITS + list(CHROM_REAL)


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


def _self_trained_sets():
    """The real sets labelled for self-training and segmented with the self-trained model
    (none when self-training is off)."""
    block = config["chromosomes"]["self_training"]
    if not block["enabled"]:
        return []
    return block["sets"] or list(CHROM_REAL)


CHROM_SELF_TRAINED = _self_trained_sets()
CHROM_SELF_TRAINED_SCORED = [n for n in CHROM_SELF_TRAINED if n in CHROM_REAL_SCORED]


def segmentation_model(wildcards):
    """The model that segments a set: the self-trained one for the sets it adapted to, else
    the model the workflow trains."""
    if wildcards.chrom_set in CHROM_SELF_TRAINED:
        return "results/chromosomes/models/cellpose_self_trained.pt"
    return "results/chromosomes/models/cellpose.pt"


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
