"""The report's headline figure: one panel per track of this run, from the tracks' tables."""

OVERVIEW_GENERATION = (
    ["results/chromosomes/compare/compare.tsv"] if chromosomes2_enabled() else []
)
OVERVIEW_STRATEGIES = simsearch_models() if SEARCH["enabled"] and SS_TRUTH else []


rule report_overview:
    input:
        fish="results/fish/compare/summary.tsv",
        segmentation=expand(
            "results/chromosomes/segment/{chrom_set}.metrics.json",
            chrom_set=CHROM_SCORED,
        ),
        slides=expand(f"{SLIDES}/{{slide_set}}/summary.tsv", slide_set=SLIDE_SETS),
        generation=OVERVIEW_GENERATION,
        simsearch=expand(
            f"{SS}/detect/{{strategy}}/metrics.json", strategy=OVERVIEW_STRATEGIES
        ),
    output:
        figure=report(
            "results/report/overview.png",
            caption="../report/overview.rst",
            category="Overview",
            labels={"figure": "one headline panel per track"},
        ),
    log:
        "logs/report_overview/report_overview.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        segmentation_sets=CHROM_SCORED,
        slide_sets=list(SLIDE_SETS),
        strategies=OVERVIEW_STRATEGIES,
        # the landing page (workflow.rst) calls a run with under 20 epochs a CPU demo
        demo=config["fish"]["train"]["epochs"] < 20,
    script:
        "../scripts/report_overview.py"
