from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fish.smk"


wildcard_constraints:
    split="|".join(SPLITS),
    test_set="|".join(SPLITS),
    model="|".join(ALL_FISH_MODELS),


rule all:
    default_target: True
    input:
        get_final_output(),
