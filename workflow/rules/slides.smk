"""MYCN calls on whole FISH slides: nucleus model, per-sample calls, per-set summary."""


include: "slides_common.smk"


rule slides_train_fields:
    output:
        directory(f"{SLIDES}/train_fields"),
    log:
        "logs/slides_train_fields/slides_train_fields.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        paint=lookup(dpath="fish/paint", within=config),
        fields=lookup(dpath="fish/fields", within=config),
        n_fields=lookup(dpath="slides/cellpose/fields", within=config),
        seed=stage_seed("slides_train_fields"),
    script:
        "../scripts/slides_train_fields.py"


rule slides_cellpose_train:
    input:
        train=slides_training_input(),
        train_files=slides_training_files(),
    output:
        model=f"{SLIDES}/models/nuclei.pt",
        history=f"{SLIDES}/models/nuclei_history.parquet",
    log:
        "logs/slides_cellpose_train/slides_cellpose_train.log",
    benchmark:
        "logs/slides_cellpose_train/slides_cellpose_train.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        settings=lookup(dpath="slides/cellpose", within=config),
        device=config["device"],
        seed=stage_seed("slides_cellpose_train"),
    script:
        "../scripts/slides_cellpose_train.py"


rule slides_release:
    input:
        model=f"{SLIDES}/models/nuclei.pt",
    output:
        model=f"{SLIDES}/release/nuclei_cellpose.pt",
        card=f"{SLIDES}/release/nuclei_cellpose.md",
        scores=f"{SLIDES}/release/scores.tsv",
    log:
        "logs/slides_release/slides_release.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        segment=lookup(dpath="slides/segment", within=config),
        fish=lookup(dpath="fish", within=config),
        cellpose=lookup(dpath="slides/cellpose", within=config),
        seed=config["seed"],
        configfiles=workflow.configfiles,
    script:
        "../scripts/slides_release.py"


rule slides_call:
    input:
        unpack(slides_cell_labels),
        sheet=slides_sheet,
        files=slides_files,
        nuclei=slides_nuclei_model(),
        classifier=slides_classifier(),
    output:
        cells=f"{SLIDES}/{{slide_set}}/{{sample}}/cells.parquet",
        stack=f"{SLIDES}/{{slide_set}}/{{sample}}/crops.tif",
        table=f"{SLIDES}/{{slide_set}}/{{sample}}/crops.parquet",
        timing=f"{SLIDES}/{{slide_set}}/{{sample}}/timing.json",
        overlay=report(
            f"{SLIDES}/{{slide_set}}/{{sample}}/overlay.png",
            caption="../report/slides_overlay.rst",
            category="MYCN slides",
            subcategory="{slide_set}",
            labels={"sample": "{sample}", "figure": "field overlay"},
        ),
        card=report(
            f"{SLIDES}/{{slide_set}}/{{sample}}/card.html",
            caption="../report/slides_card.rst",
            category="MYCN slides",
            subcategory="{slide_set}",
            labels={"sample": "{sample}", "figure": "verdict and counts"},
        ),
    log:
        "logs/slides_call/{slide_set}/{sample}.log",
    benchmark:
        "logs/slides_call/{slide_set}/{sample}.benchmark.tsv"
    wildcard_constraints:
        slide_set="|".join(SLIDE_SETS) or "none",
        sample="[A-Za-z0-9._-]+",
    conda:
        CONDA_ENV
    threads: 1  # two fields at once on 2 cores; Cellpose gains little from a 2nd thread
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
        gpu=gpus(),
    params:
        settings=slides_settings,
        paint=lookup(dpath="fish/paint", within=config),
        device=config["device"],
    script:
        "../scripts/slides_call.py"


rule slides_summary:
    input:
        cells=lambda wc: expand(
            f"{SLIDES}/{wc.slide_set}/{{sample}}/cells.parquet",
            sample=SLIDE_SETS[wc.slide_set],
        ),
        timing=lambda wc: expand(
            f"{SLIDES}/{wc.slide_set}/{{sample}}/timing.json",
            sample=SLIDE_SETS[wc.slide_set],
        ),
        stacks=lambda wc: expand(
            f"{SLIDES}/{wc.slide_set}/{{sample}}/crops.tif",
            sample=SLIDE_SETS[wc.slide_set],
        ),
    output:
        cells=f"{SLIDES}/{{slide_set}}/cells.parquet",
        summary=f"{SLIDES}/{{slide_set}}/summary.tsv",
        html=report(
            f"{SLIDES}/{{slide_set}}/summary.html",
            caption="../report/slides_summary.rst",
            category="MYCN slides",
            subcategory="{slide_set}",
            labels={"sample": "all", "figure": "per-sample verdicts"},
        ),
        gallery=report(
            f"{SLIDES}/{{slide_set}}/gallery.png",
            caption="../report/slides_gallery.rst",
            category="MYCN slides",
            subcategory="{slide_set}",
            labels={"sample": "all", "figure": "most and least certain cells"},
        ),
    log:
        "logs/slides_summary/{slide_set}.log",
    wildcard_constraints:
        slide_set="|".join(SLIDE_SETS) or "none",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        calls=lookup(dpath="slides/calls", within=config),
        classes=lookup(dpath="fish/paint/classes", within=config),
        gallery=lookup(dpath="slides/report/gallery", within=config),
    script:
        "../scripts/slides_summary.py"
