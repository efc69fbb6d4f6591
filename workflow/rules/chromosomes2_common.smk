"""Chromosome track II: settings, seeds and input functions (rules in chromosomes2.smk)."""

CHROM2 = config["chromosomes"]
CHROM_DATA = list(CHROM2["compare"]["data"])
CHROM_AUGS = list(CHROM2["compare"]["augmentation"])
CHROM_GENERATORS = ["bbdm"] + (["cyclegan"] if CHROM2["cyclegan"]["enabled"] else [])
CHROM_SEEDS = [
    stage_seed("chrom_train", i) for i in range(CHROM2["classifier"]["seeds"])
]
FEATURE_MODEL = (
    f"results/chromosomes/classifier/real/{CHROM2['filter']['features_from']}/seed_0.pt"
)


def chromosomes2_enabled():
    """Generation and comparison need the unannotated crops and the switch on."""
    return CHROM2["compare"]["enabled"] and "unannotated" in CHROM_SPLITS


def crop_files(name):
    """Stack and table of a Chromosomes I crop set."""
    return {
        "stack": f"results/chromosomes/crops/{name}.tif",
        "table": f"results/chromosomes/crops/{name}.parquet",
    }


def synthetic_inputs(wildcards):
    """Generated aberration sets (and the filter's kept ids) added to the real crops."""
    if wildcards.chrom_data == "real":
        return {}
    generator = wildcards.chrom_data.removesuffix("_filtered")
    files = {
        "synthetic_stack": f"results/chromosomes/generated/{generator}.tif",
        "synthetic_table": f"results/chromosomes/generated/{generator}.parquet",
    }
    if wildcards.chrom_data.endswith("_filtered"):
        files["kept"] = f"results/chromosomes/filter/kept_{generator}.parquet"
    return files


def feature_set_input(wildcards):
    """Crops of a feature set: the real annotated train crops or a generated set."""
    if wildcards.feature_set == "train":
        return crop_files("train")
    return {
        "stack": f"results/chromosomes/generated/{wildcards.feature_set}.tif",
        "table": f"results/chromosomes/generated/{wildcards.feature_set}.parquet",
    }


def filter_inputs(wildcards):
    """Features and crops of every generator's samples."""
    files = {}
    for generator in CHROM_GENERATORS:
        files[f"{generator}_features"] = (
            f"results/chromosomes/features/{generator}.parquet"
        )
        files[f"{generator}_stack"] = f"results/chromosomes/generated/{generator}.tif"
        files[f"{generator}_table"] = (
            f"results/chromosomes/generated/{generator}.parquet"
        )
    return files


def chromosomes2_outputs():
    """BBDM samples, the filter's report and the classifier comparison."""
    if not chromosomes2_enabled():
        return []
    return [
        "results/chromosomes/report/bbdm_gallery.png",
        "results/chromosomes/report/filter_umap.png",
        "results/chromosomes/report/filter_ssim.png",
        "results/chromosomes/report/filter_summary.html",
        "results/chromosomes/report/compare.html",
    ]
