"""FISH track: synthetic single-nucleus patch sets and whole fields."""


rule fish_paint:
    output:
        stack="results/fish/synthetic/{split}.tif",
        table="results/fish/synthetic/{split}.parquet",
    log:
        "logs/fish_paint/{split}.log",
    benchmark:
        "logs/fish_paint/{split}.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        paint=lookup(dpath="fish/paint", within=config),
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
