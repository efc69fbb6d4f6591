"""Slide sets, sheets, settings and targets of the slide calls (rules in slides.smk)."""

from fishline.schema import deep_merge
from fishline.slides.sheet import sheet_samples


def _real_sheet(name):
    """Sheet path of a real slide set (given alone or with per-set settings)."""
    entry = config["slides"]["real"][name]
    return entry if isinstance(entry, str) else entry["sheet"]


def _slide_sets():
    """Samples of every slide set: the painted fields and each configured real sheet
    (validated now, so a bad sheet stops the run before any job)."""
    slides = config["slides"]
    sets = {"painted": FIELDS} if slides["painted"] else {}
    for name in slides["real"]:
        try:
            sets[name] = sheet_samples(_real_sheet(name))
        except InputError as error:
            raise WorkflowError(f"slides.real.{name}: {error}")
    return sets


SLIDE_SETS = _slide_sets()
SLIDES = "results/fish/slides"


def slides_sheet(wildcards):
    """The sheet of a slide set: the painted fields' sheet or the configured one."""
    if wildcards.slide_set == "painted":
        return "results/fish/fields/sheet.tsv"
    return _real_sheet(wildcards.slide_set)


def slides_files(wildcards):
    """The images, masks and label files of one real sample's rows (painted fields: none,
    they are outputs of fish_fields already)."""
    if wildcards.slide_set == "painted":
        return []
    return user_sheet_files(
        _real_sheet(wildcards.slide_set),
        "slide_sheet",
        f"slides.real.{wildcards.slide_set}",
        wildcards.sample,
    )


def slides_settings(wildcards):
    """slides settings of one set: a real set's segment/crops changes merged over them."""
    settings = {
        k: v
        for k, v in config["slides"].items()
        if k not in ("real", "painted", "report")
    }
    entry = config["slides"]["real"].get(wildcards.slide_set)
    if isinstance(entry, dict):
        changes = {key: entry[key] for key in ("segment", "crops") if key in entry}
        settings = deep_merge(settings, changes)
    return settings


def slides_cell_labels(wildcards):
    """Per-nucleus truth of the painted fields (real sheets carry their own, if any)."""
    return (
        {"labels": "results/fish/fields/nuclei.parquet"}
        if wildcards.slide_set == "painted"
        else {}
    )


def slides_nuclei_model():
    """The configured nucleus model file (the shipped one by default), or with model: null
    the one trained here."""
    model = config["slides"]["cellpose"]["model"]
    return shipped_file(model) if model else f"{SLIDES}/models/nuclei.pt"


def slides_classifier():
    """The classifier file that calls the cells: a fish.models entry trained in this run, or a
    model file (the shipped production classifier)."""
    name = config["slides"]["classifier"]
    if name in config["fish"]["models"]:
        return f"results/fish/models/{name}.pt"
    return shipped_file(name)


def slides_training_input():
    """The user's nucleus masks, or the painted training fields."""
    return config["slides"]["cellpose"]["sheet"] or f"{SLIDES}/train_fields"


def slides_training_files():
    """The files of the user's own nucleus training sheet, when one is configured."""
    sheet = config["slides"]["cellpose"]["sheet"]
    if not sheet:
        return []
    return user_sheet_files(sheet, "metaphase_sheet", "slides.cellpose.sheet")


def slides_outputs():
    """Per set: cells, summary, report table, gallery; per sample: overlay and card."""
    outputs = []
    for name, samples in SLIDE_SETS.items():
        outputs += expand(
            f"{SLIDES}/{name}/{{file}}",
            file=["cells.parquet", "summary.tsv", "summary.html", "gallery.png"],
        )
        outputs += expand(
            f"{SLIDES}/{name}/{{sample}}/{{file}}",
            sample=samples,
            file=["overlay.png", "card.html"],
        )
    return outputs
