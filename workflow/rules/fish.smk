"""FISH track: synthetic single-nucleus patch sets and whole fields."""


include: "fish_common.smk"


rule fish_paint:
    output:
        stack="results/fish/synthetic/{split}.tif",
        table="results/fish/synthetic/{split}.parquet",
    log:
        "logs/fish_paint/{split}.log",
    benchmark:
        "logs/fish_paint/{split}.benchmark.tsv"
    priority: 10
    conda:
        CONDA_ENV
    threads: shared_threads(4)
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        paint=lookup(dpath="fish/paint", within=config),
        fields=for_field_splits(config["fish"]["fields"]),
        crops=for_field_splits(config["slides"]["crops"]),
        seed=lambda wc: stage_seed("fish_paint", wc.split),
    script:
        "../scripts/fish_paint.py"


rule fish_fields:
    output:
        images=expand("results/fish/fields/{field}.tif", field=FIELDS),
        masks=expand("results/fish/fields/{field}.mask.tif", field=FIELDS),
        sheet="results/fish/fields/sheet.tsv",
        nuclei="results/fish/fields/nuclei.parquet",
    log:
        "logs/fish_fields/fish_fields.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        paint=lookup(dpath="fish/paint", within=config),
        fields=lookup(dpath="fish/fields", within=config),
        seed=stage_seed("fish_fields"),
    script:
        "../scripts/fish_fields.py"


rule fish_paint_report:
    input:
        stacks=expand("results/fish/synthetic/{split}.tif", split=SPLITS),
        tables=expand("results/fish/synthetic/{split}.parquet", split=SPLITS),
        sheet="results/fish/fields/sheet.tsv",
        nuclei="results/fish/fields/nuclei.parquet",
    output:
        gallery=report(
            "results/fish/report/gallery.png",
            caption="../report/fish_gallery.rst",
            category="FISH painter",
            labels={"figure": "examples per class and split"},
        ),
        realism=report(
            "results/fish/report/realism.png",
            caption="../report/fish_realism.rst",
            category="FISH painter",
            labels={"figure": "realism knobs"},
        ),
        conditions=report(
            "results/fish/report/conditions.png",
            caption="../report/fish_conditions.rst",
            category="FISH painter",
            labels={"figure": "examples per condition"},
        ),
        class_counts=report(
            "results/fish/report/class_counts.png",
            caption="../report/fish_class_counts.rst",
            category="FISH painter",
            labels={"figure": "class counts"},
        ),
        signal_counts=report(
            "results/fish/report/signal_counts.png",
            caption="../report/fish_signal_counts.rst",
            category="FISH painter",
            labels={"figure": "signal counts"},
        ),
        fields=report(
            "results/fish/report/fields.png",
            caption="../report/fish_fields.rst",
            category="FISH painter",
            labels={"figure": "whole fields"},
        ),
    log:
        "logs/fish_paint_report/fish_paint_report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        paint=lookup(dpath="fish/paint", within=config),
        per_class=lookup(dpath="report/gallery_per_class", within=config),
        seed=stage_seed("fish_paint_report"),
    script:
        "../scripts/fish_paint_report.py"


rule fish_train:
    input:
        stack="results/fish/synthetic/train.tif",
        table="results/fish/synthetic/train.parquet",
    output:
        model="results/fish/models/{model}.pt",
        history="results/fish/models/{model}.history.parquet",
    log:
        "logs/fish_train/{model}.log",
    benchmark:
        "logs/fish_train/{model}.benchmark.tsv"
    priority: 10
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        method=lambda wc: fish_model_spec(wc.model),
        augment=lookup(dpath="fish/augment", within=config),
        classes=lookup(dpath="fish/paint/classes", within=config),
        seed=lambda wc: stage_seed("fish_train", wc.model),
        device=lookup(dpath="device", within=config),
        checkpoint=lambda wc: f"results/fish/models/checkpoints/{wc.model}.ckpt",
    script:
        "../scripts/fish_train.py"


rule fish_real_patches:
    input:
        lambda wc: FISH_REAL[wc.test_set],
    output:
        stack="results/fish/real/{test_set}.tif",
        table="results/fish/real/{test_set}.parquet",
    log:
        "logs/fish_real_patches/{test_set}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        classes=lookup(dpath="fish/paint/classes", within=config),
        probes=lookup(dpath="fish/paint/probes", within=config),
        size=lookup(dpath="fish/paint/patch_size", within=config),
    script:
        "../scripts/fish_real_patches.py"


rule fish_evaluate:
    input:
        unpack(fish_test_set),
        model="results/fish/models/{model}.pt",
    output:
        predictions="results/fish/eval/{model}/{test_set}.parquet",
        metrics="results/fish/eval/{model}/{test_set}.json",
    log:
        "logs/fish_evaluate/{model}/{test_set}.log",
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpus(),
    params:
        device=lookup(dpath="device", within=config),
    script:
        "../scripts/fish_evaluate.py"


rule fish_release:
    input:
        model="results/fish/models/{model}.pt",
        stacks=expand("results/fish/synthetic/{split}.tif", split=FISH_TEST_SETS),
        tables=expand("results/fish/synthetic/{split}.parquet", split=FISH_TEST_SETS),
    output:
        model="results/fish/release/{model}/fish_classifier.pt",
        card="results/fish/release/{model}/fish_classifier.md",
        scores="results/fish/release/{model}/scores.tsv",
    log:
        "logs/fish_release/{model}.log",
    wildcard_constraints:
        model="|".join(FISH_MODELS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        sets=FISH_TEST_SETS,
        min_certainty=lookup(dpath="slides/calls/min_certainty", within=config),
        fish=lookup(dpath="fish", within=config),
        seed=config["seed"],
        configfiles=workflow.configfiles,
    script:
        "../scripts/fish_release.py"


rule fish_compare:
    input:
        predictions=expand(
            "results/fish/eval/{model}/{test_set}.parquet",
            model=FISH_MODELS + SPOT_BASELINE,
            test_set=FISH_EVAL_SETS,
        ),
        histories=expand(
            "results/fish/models/{model}.history.parquet", model=FISH_MODELS
        ),
    output:
        retention=report(
            "results/fish/compare/retention.html",
            caption="../report/fish_retention.rst",
            category="FISH classifier",
            labels={"figure": "accuracy, calibration and retention (tables)"},
        ),
        summary="results/fish/compare/summary.tsv",
        calibration=report(
            "results/fish/compare/calibration.png",
            caption="../report/fish_calibration.rst",
            category="FISH classifier",
            labels={"figure": "calibration diagrams"},
        ),
        threshold=report(
            "results/fish/compare/threshold.png",
            caption="../report/fish_threshold.rst",
            category="FISH classifier",
            labels={"figure": "accuracy and class mix vs certainty"},
        ),
        confusion=report(
            "results/fish/compare/confusion.png",
            caption="../report/fish_confusion.rst",
            category="FISH classifier",
            labels={"figure": "confusion matrices"},
        ),
        training=report(
            "results/fish/compare/training.png",
            caption="../report/fish_training.rst",
            category="FISH classifier",
            labels={"figure": "training curves"},
        ),
    log:
        "logs/fish_compare/fish_compare.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        models=FISH_MODELS + SPOT_BASELINE,
        networks=FISH_MODELS,
        test_sets=FISH_EVAL_SETS,
        classes=lookup(dpath="fish/paint/classes", within=config),
    script:
        "../scripts/fish_compare.py"


rule fish_ablation:
    input:
        predictions=ablation_predictions(),
    output:
        table=report(
            "results/fish/compare/ablation.html",
            caption="../report/fish_ablation.rst",
            category="FISH classifier",
            labels={"figure": "augmentation ablation"},
        ),
    log:
        "logs/fish_ablation/fish_ablation.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        model=lookup(dpath="fish/ablation/model", within=config),
        steps=AUGMENT_STEPS,
        test_sets=FISH_TEST_SETS,
    script:
        "../scripts/fish_ablation.py"


rule fish_spots_fit:
    input:
        stack=lambda wc: f"results/fish/synthetic/{config['fish']['spots']['fit_split']}.tif",
        table=lambda wc: f"results/fish/synthetic/{config['fish']['spots']['fit_split']}.parquet",
    output:
        params="results/fish/models/spots.json",
    log:
        "logs/fish_spots_fit/fish_spots_fit.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        spots=lookup(dpath="fish/spots", within=config),
        classes=lookup(dpath="fish/paint/classes", within=config),
    script:
        "../scripts/fish_spots_fit.py"


rule fish_spots_evaluate:
    input:
        unpack(fish_test_set),
        params="results/fish/models/spots.json",
    output:
        predictions="results/fish/eval/spots/{test_set}.parquet",
        metrics="results/fish/eval/spots/{test_set}.json",
    log:
        "logs/fish_spots_evaluate/{test_set}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    script:
        "../scripts/fish_spots_evaluate.py"


rule fish_umap:
    input:
        model="results/fish/models/{model}.pt",
        stacks=expand("results/fish/synthetic/{split}.tif", split=UMAP_SETS),
        tables=expand("results/fish/synthetic/{split}.parquet", split=UMAP_SETS),
    output:
        figure=report(
            "results/fish/compare/umap_{model}.png",
            caption="../report/fish_umap.rst",
            category="FISH classifier",
            labels={"figure": "representation UMAP", "model": "{model}"},
        ),
        table="results/fish/compare/umap_{model}.parquet",
    log:
        "logs/fish_umap/{model}.log",
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpus(),
    params:
        names=UMAP_SETS,
        max_points=lookup(dpath="fish/umap/max_points", within=config),
        seed=lambda wc: stage_seed("fish_umap", wc.model),
        device=lookup(dpath="device", within=config),
    script:
        "../scripts/fish_umap.py"
