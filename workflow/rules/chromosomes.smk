"""Chromosome track I: painted metaphases, Cellpose segmentation, chromosome crops."""


include: "chromosomes_common.smk"


rule chrom_paint:
    output:
        spreads=directory("results/chromosomes/synthetic/{chrom_split}"),
        instances="results/chromosomes/synthetic/{chrom_split}.instances.parquet",
    log:
        "logs/chrom_paint/{chrom_split}.log",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        paint=lookup(dpath="chromosomes/paint", within=config),
        n=lambda wc: config["chromosomes"]["spreads"][wc.chrom_split],
        annotated=lambda wc: wc.chrom_split != "unannotated",
        seed=lambda wc: stage_seed("chrom_paint", wc.chrom_split),
    script:
        "../scripts/chrom_paint.py"


rule cellpose_train:
    input:
        train=cellpose_training_input(),
        train_files=cellpose_training_files(),
        val=painted_spreads("val"),
        pretrained=cellpose_pretrained_input(),
    output:
        model="results/chromosomes/models/cellpose.pt",
        history="results/chromosomes/models/cellpose_history.parquet",
    log:
        "logs/cellpose_train/cellpose_train.log",
    benchmark:
        "logs/cellpose_train/cellpose_train.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/cellpose", within=config),
        device=config["device"],
        seed=stage_seed("cellpose_train"),
    script:
        "../scripts/cellpose_train.py"


rule segment:
    input:
        model="results/chromosomes/models/cellpose.pt",
        images="results/chromosomes/synthetic/{chrom_set}",
    output:
        directory("results/chromosomes/segment/{chrom_set}"),
    log:
        "logs/segment/{chrom_set}.log",
    benchmark:
        "logs/segment/{chrom_set}.benchmark.tsv"
    wildcard_constraints:
        chrom_set="|".join(CHROM_SPLITS),
    priority: 20
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/segment", within=config),
        device=config["device"],
    script:
        "../scripts/segment.py"


rule segment_spread:
    input:
        model=segmentation_model,
        images=lambda wc: CHROM_REAL[wc.chrom_set],
        files=lambda wc: chrom_set_files(wc.chrom_set, wc.sample),
    output:
        directory("results/chromosomes/segment/{chrom_set}.spreads/{sample}"),
    log:
        "logs/segment_spread/{chrom_set}/{sample}.log",
    benchmark:
        "logs/segment_spread/{chrom_set}/{sample}.benchmark.tsv"
    wildcard_constraints:
        chrom_set="|".join(CHROM_REAL) or "none",
        sample="[A-Za-z0-9._-]+",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1  # two spreads at once on 2 cores
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=30,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/segment", within=config),
        device=config["device"],
    script:
        "../scripts/segment.py"


rule chrom_self_train:
    input:
        start="results/chromosomes/models/cellpose.pt",
        sheets=[CHROM_REAL[name] for name in CHROM_SELF_TRAINED],
        files=[chrom_set_files(name) for name in CHROM_SELF_TRAINED],
        painted=(
            [painted_spreads("train")]
            if config["chromosomes"]["self_training"]["painted"]
            else []
        ),
    output:
        model="results/chromosomes/models/cellpose_self_trained.pt",
        history="results/chromosomes/models/cellpose_self_trained_history.parquet",
        pseudo=directory("results/chromosomes/self_training"),
    log:
        "logs/chrom_self_train/chrom_self_train.log",
    benchmark:
        "logs/chrom_self_train/chrom_self_train.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        sets=CHROM_SELF_TRAINED,
        settings=lookup(dpath="chromosomes/self_training", within=config),
        cellpose=lookup(dpath="chromosomes/cellpose", within=config),
        segment=lookup(dpath="chromosomes/segment", within=config),
        device=config["device"],
        seed=stage_seed("chrom_self_train"),
    script:
        "../scripts/chrom_self_train.py"


rule chrom_self_train_evaluate:
    input:
        "results/chromosomes/self_training",
    output:
        metrics="results/chromosomes/self_training_scores/{chrom_set}.metrics.json",
        per_image="results/chromosomes/self_training_scores/{chrom_set}.per_image.tsv",
    log:
        "logs/chrom_self_train_evaluate/{chrom_set}.log",
    wildcard_constraints:
        chrom_set="|".join(CHROM_SELF_TRAINED_SCORED) or "none",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/chrom_self_train_evaluate.py"


rule segment_collect:
    input:
        chrom_real_spreads,
    output:
        directory("results/chromosomes/segment/{chrom_set}"),
    log:
        "logs/segment_collect/{chrom_set}.log",
    wildcard_constraints:
        chrom_set="|".join(CHROM_REAL) or "none",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/segment_collect.py"


rule segment_evaluate:
    input:
        "results/chromosomes/segment/{chrom_set}",
    output:
        metrics="results/chromosomes/segment/{chrom_set}.metrics.json",
        per_image="results/chromosomes/segment/{chrom_set}.per_image.tsv",
        overlay=report(
            "results/chromosomes/report/overlay_{chrom_set}.png",
            caption="../report/chrom_overlay.rst",
            category="Chromosomes",
            subcategory="Segmentation",
            labels={"set": "{chrom_set}"},
        ),
    log:
        "logs/segment_evaluate/{chrom_set}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        overlays=lookup(dpath="chromosomes/report/overlays", within=config),
    script:
        "../scripts/segment_evaluate.py"


rule chrom_realism:
    input:
        painted=painted_spreads("train"),
        real=[CHROM_REAL[name] for name in CHROM_REAL_SCORED],
        real_files=[chrom_set_files(name) for name in CHROM_REAL_SCORED],
    output:
        table=report(
            "results/chromosomes/report/realism.html",
            caption="../report/chrom_realism.rst",
            category="Chromosomes",
            subcategory="Painter",
            labels={"figure": "painted vs real statistics (table)"},
        ),
        figure=report(
            "results/chromosomes/report/realism.png",
            caption="../report/chrom_realism.rst",
            category="Chromosomes",
            subcategory="Painter",
            labels={"figure": "painted vs real statistics (figure)"},
        ),
        tsv="results/chromosomes/report/realism.tsv",
    log:
        "logs/chrom_realism/chrom_realism.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        names=CHROM_REAL_SCORED,
    script:
        "../scripts/chrom_realism.py"


rule chrom_crops:
    input:
        segmented="results/chromosomes/segment/{chrom_set}",
        truth=chrom_truth_input,
    output:
        stack="results/chromosomes/crops/{chrom_set}.tif",
        table="results/chromosomes/crops/{chrom_set}.parquet",
    log:
        "logs/chrom_crops/{chrom_set}.log",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=lookup(dpath="chromosomes/crops", within=config),
    script:
        "../scripts/chrom_crops.py"


rule chrom_report:
    input:
        spreads=painted_spreads("train"),
        stacks=expand("results/chromosomes/crops/{chrom_set}.tif", chrom_set=CHROM_SETS),
        tables=expand(
            "results/chromosomes/crops/{chrom_set}.parquet", chrom_set=CHROM_SETS
        ),
        metrics=expand(
            "results/chromosomes/segment/{chrom_set}.metrics.json",
            chrom_set=CHROM_SCORED,
        ),
        before_self_training=expand(
            "results/chromosomes/self_training_scores/{chrom_set}.metrics.json",
            chrom_set=CHROM_SELF_TRAINED_SCORED,
        ),
    output:
        spreads=report(
            "results/chromosomes/report/spreads.png",
            caption="../report/chrom_spreads.rst",
            category="Chromosomes",
            subcategory="Painter",
            labels={"figure": "painted spreads"},
        ),
        gallery=report(
            "results/chromosomes/report/gallery.png",
            caption="../report/chrom_gallery.rst",
            category="Chromosomes",
            subcategory="Crops",
            labels={"figure": "aligned crops per class"},
        ),
        counts=report(
            "results/chromosomes/report/crop_counts.html",
            caption="../report/chrom_counts.rst",
            category="Chromosomes",
            subcategory="Crops",
            labels={"figure": "crops per set and class"},
        ),
        counts_tsv="results/chromosomes/report/crop_counts.tsv",
        segmentation=report(
            "results/chromosomes/report/segmentation.html",
            caption="../report/chrom_segmentation.rst",
            category="Chromosomes",
            subcategory="Segmentation",
            labels={"figure": "segmentation scores per set"},
        ),
        segmentation_tsv="results/chromosomes/report/segmentation.tsv",
    log:
        "logs/chrom_report/chrom_report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        sets=CHROM_SETS,
        scored=CHROM_SCORED,
        before_self_training=CHROM_SELF_TRAINED_SCORED,
        report=lookup(dpath="chromosomes/report", within=config),
        seed=stage_seed("chrom_report"),
    script:
        "../scripts/chrom_report.py"


rule chrom_finetune_curve:
    input:
        start=finetune_start_input(),
        sheet=[CHROM_REAL[CHROM_CURVE_SET]] if CHROM_CURVE_SET else [],
        files=chrom_set_files(CHROM_CURVE_SET) if CHROM_CURVE_SET else [],
    output:
        table="results/chromosomes/finetune/curve.tsv",
        figure=report(
            "results/chromosomes/report/finetune_curve.png",
            caption="../report/chrom_finetune_curve.rst",
            category="Chromosomes",
            subcategory="Segmentation",
            labels={"figure": "fine-tuning on K real spreads"},
        ),
    log:
        "logs/chrom_finetune_curve/chrom_finetune_curve.log",
    benchmark:
        "logs/chrom_finetune_curve/chrom_finetune_curve.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=480,
        gpu=gpus(),
    params:
        curve=lookup(dpath="chromosomes/finetune_curve", within=config),
        cellpose=lookup(dpath="chromosomes/cellpose", within=config),
        segment=lookup(dpath="chromosomes/segment", within=config),
        device=config["device"],
        seed=stage_seed("chrom_finetune_curve"),
    script:
        "../scripts/chrom_finetune_curve.py"


rule chrom_release:
    input:
        model="results/chromosomes/models/cellpose.pt",
        test=painted_spreads("test"),
        real=[CHROM_REAL[name] for name in CHROM_REAL_SCORED],
        real_files=[chrom_set_files(name) for name in CHROM_REAL_SCORED],
    output:
        model="results/chromosomes/release/chromosomes_cellpose.pt",
        card="results/chromosomes/release/chromosomes_cellpose.md",
        scores="results/chromosomes/release/scores.tsv",
    log:
        "logs/chrom_release/chrom_release.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        real=CHROM_REAL_SCORED,
        segment=lookup(dpath="chromosomes/segment", within=config),
        chromosomes=lookup(dpath="chromosomes", within=config),
        seed=config["seed"],
        configfiles=workflow.configfiles,
    script:
        "../scripts/chrom_release.py"
