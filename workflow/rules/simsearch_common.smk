"""SimSearch: image sheet, roles, runs and targets (rules in simsearch.smk)."""

SEARCH = config["simsearch"]
SS = "results/simsearch"
SS_STRATEGIES = ["pos", "pos_neg", "pos_selflearn", "pos_neg_selflearn"]
SS_ABLATION = SEARCH["ablation"]


SS_TRUTH = simsearch_has_truth(config)
SS_CELLS = [
    f"P{p}_N{n}_r{r}"
    for p in SS_ABLATION["prototypes"]
    for n in SS_ABLATION["negatives"]
    for r in range(SS_ABLATION["repeats"])
]


def simsearch_sheet():
    """The user's SimSearch sheet, or the painted demo's."""
    return SEARCH["sheet"] or f"{SS}/demo/sheet.tsv"


def simsearch_files():
    """The images and point files the user's SimSearch sheet names (the demo's: none, they
    are outputs of ss_paint)."""
    return (
        user_sheet_files(SEARCH["sheet"], "simsearch_sheet", "simsearch.sheet")
        if SEARCH["sheet"]
        else []
    )


def simsearch_annotations():
    """The user's annotations file, or the simulated user's."""
    return SEARCH["annotations"] or f"{SS}/annotations/simulated.json"


def simsearch_roles():
    """Settings that assign the images to the displayed, noisy and test roles."""
    return {"displayed": SEARCH["displayed"], "test": SEARCH["test"]}


def simsearch_training_patches(wildcards):
    """Clean and noisy patches of the annotated run, or the fully supervised patch set."""
    if wildcards.strategy == "supervised":
        return {
            "clean_stack": f"{SS}/patches/supervised.tif",
            "clean_table": f"{SS}/patches/supervised.parquet",
        }
    return {
        "clean_stack": f"{SS}/patches/clean.tif",
        "clean_table": f"{SS}/patches/clean.parquet",
        "noisy_stack": f"{SS}/patches/noisy.tif",
        "noisy_table": f"{SS}/patches/noisy.parquet",
    }


def simsearch_models():
    """The configured strategy, plus the supervised baseline when truth exists."""
    return [SEARCH["strategy"]] + (["supervised"] if SS_TRUTH else [])


def simsearch_outputs():
    """Detections of every model; with truth, metrics, the ablation and the report."""
    if not SEARCH["enabled"]:
        return []
    outputs = expand(
        f"{SS}/detect/{{strategy}}/detections.parquet", strategy=simsearch_models()
    )
    if SEARCH["detect"]["segmentation"]:
        outputs += expand(
            f"{SS}/detect/{{strategy}}/segmentation", strategy=simsearch_models()
        )
    outputs += [f"{SS}/report/correlation.html", f"{SS}/report/proposals.png"]
    if SS_TRUTH:
        outputs += expand(
            f"{SS}/detect/{{strategy}}/metrics.json", strategy=simsearch_models()
        )
        outputs += [f"{SS}/report/summary.html", f"{SS}/report/pr_curves.png"]
    if SS_TRUTH and SEARCH["cells"]["enabled"]:
        outputs += [f"{SS}/cells/table.html", f"{SS}/cells/curve.png"]
    if SS_TRUTH and SS_ABLATION["enabled"]:
        outputs += [f"{SS}/ablation/table.html", f"{SS}/ablation/violin.png"]
    return outputs
