from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version

from fishline.config import read_yaml
from fishline.errors import InputError
from fishline.runlock import clear_stale_lock, record_lock_owner

min_version("9.0")

# A run killed by kill -9 leaves Snakemake's lock: removed here when its process is gone.
if workflow.is_main_process and (cleared := clear_stale_lock()):
    logger.warning(cleared)

# Snakemake's own message for a broken config file names neither the file nor the line.
if Path("config/config.yaml").exists():
    try:
        read_yaml("config/config.yaml")
    except InputError as error:
        raise WorkflowError(str(error))


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


onstart:
    record_lock_owner()


rule all:
    default_target: True
    input:
        get_final_output(),
