from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fish.smk"
include: "workflow/rules/chromosomes.smk"
include: "workflow/rules/slides.smk"
include: "workflow/rules/chromosomes2.smk"
include: "workflow/rules/simsearch.smk"
include: "workflow/rules/overview.smk"


wildcard_constraints:
    split="|".join(SPLITS),
    test_set="|".join(SPLITS + list(FISH_REAL)),
    model="|".join(ALL_FISH_MODELS),
    chrom_split="|".join(CHROM_SPLITS),
    chrom_set="|".join(CHROM_SETS),
    strategy="|".join(SS_STRATEGIES + ["supervised"]),
    cell="P[0-9]+_N[0-9]+_r[0-9]+",


rule all:
    default_target: True
    input:
        get_final_output(),
