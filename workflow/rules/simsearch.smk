"""SimSearch: demo images, cached features, (simulated) annotations, patches, training,
detection, evaluation, ablation and report."""


include: "simsearch_common.smk"


rule ss_paint:
    output:
        sheet=f"{SS}/demo/sheet.tsv",
        images=directory(f"{SS}/demo/images"),
        points=directory(f"{SS}/demo/points"),
    log:
        "logs/ss_paint/ss_paint.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        paint=lookup(dpath="simsearch/paint", within=config),
        seed=stage_seed("ss_paint"),
    script:
        "../scripts/ss_paint.py"


rule ss_features:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
    output:
        directory(f"{SS}/features"),
    log:
        "logs/ss_features/ss_features.log",
    benchmark:
        "logs/ss_features/ss_features.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
        gpu=gpus(),
    params:
        search=lookup(dpath="simsearch/search", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        device=config["device"],
        seed=stage_seed("ss_features"),
    script:
        "../scripts/ss_features.py"


rule ss_simulate_user:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        features=f"{SS}/features",
    output:
        f"{SS}/annotations/simulated.json",
    log:
        "logs/ss_simulate_user/ss_simulate_user.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        roles=simsearch_roles(),
        classes=lookup(dpath="simsearch/classes", within=config),
        user=lookup(dpath="simsearch/user", within=config),
        search=lookup(dpath="simsearch/search", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        seed=stage_seed("ss_simulate_user"),
    script:
        "../scripts/ss_simulate_user.py"


rule ss_noisy:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        features=f"{SS}/features",
        annotations=simsearch_annotations(),
    output:
        clean_stack=f"{SS}/patches/clean.tif",
        clean_table=f"{SS}/patches/clean.parquet",
        noisy_stack=f"{SS}/patches/noisy.tif",
        noisy_table=f"{SS}/patches/noisy.parquet",
    log:
        "logs/ss_noisy/ss_noisy.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        roles=simsearch_roles(),
        classes=lookup(dpath="simsearch/classes", within=config),
        noisy=lookup(dpath="simsearch/noisy", within=config),
        search=lookup(dpath="simsearch/search", within=config),
        seed=stage_seed("ss_noisy"),
    script:
        "../scripts/ss_noisy.py"


rule ss_supervised_patches:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
    output:
        stack=f"{SS}/patches/supervised.tif",
        table=f"{SS}/patches/supervised.parquet",
    log:
        "logs/ss_supervised_patches/ss_supervised_patches.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        roles=simsearch_roles(),
        classes=lookup(dpath="simsearch/classes", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        search=lookup(dpath="simsearch/search", within=config),
        noisy=lookup(dpath="simsearch/noisy", within=config),
        seed=stage_seed("ss_supervised_patches"),
    script:
        "../scripts/ss_supervised_patches.py"


rule ss_train:
    input:
        unpack(simsearch_training_patches),
    output:
        model=f"{SS}/models/{{strategy}}.pt",
        history=f"{SS}/models/{{strategy}}_history.parquet",
    log:
        "logs/ss_train/{strategy}.log",
    benchmark:
        "logs/ss_train/{strategy}.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=120,
        gpu=gpus(),
    params:
        train=lookup(dpath="simsearch/train", within=config),
        device=config["device"],
        seed=lambda wc: stage_seed("ss_train", wc.strategy),
    script:
        "../scripts/ss_train.py"


rule ss_detect:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        model=f"{SS}/models/{{strategy}}.pt",
        annotations=simsearch_annotations(),
    output:
        detections=f"{SS}/detect/{{strategy}}/detections.parquet",
        overlay=report(
            f"{SS}/detect/{{strategy}}/overlay.png",
            caption="../report/ss_overlay.rst",
            category="SimSearch",
            labels={"model": "{strategy}", "figure": "detections"},
        ),
    log:
        "logs/ss_detect/{strategy}.log",
    benchmark:
        "logs/ss_detect/{strategy}.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
        gpu=gpus(),
    params:
        roles=simsearch_roles(),
        detect=lookup(dpath="simsearch/detect", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        device=config["device"],
    script:
        "../scripts/ss_detect.py"


rule ss_segment:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        model=f"{SS}/models/{{strategy}}.pt",
        annotations=simsearch_annotations(),
    output:
        directory(f"{SS}/detect/{{strategy}}/segmentation"),
    log:
        "logs/ss_segment/{strategy}.log",
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
        gpu=gpus(),
    params:
        roles=simsearch_roles(),
        detect=lookup(dpath="simsearch/detect", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        device=config["device"],
    script:
        "../scripts/ss_segment.py"


rule ss_evaluate:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        detections=f"{SS}/detect/{{strategy}}/detections.parquet",
    output:
        metrics=f"{SS}/detect/{{strategy}}/metrics.json",
        curve=f"{SS}/detect/{{strategy}}/pr.parquet",
    log:
        "logs/ss_evaluate/{strategy}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        roles=simsearch_roles(),
        classes=lookup(dpath="simsearch/classes", within=config),
        search=lookup(dpath="simsearch/search", within=config),
        evaluate=lookup(dpath="simsearch/evaluate", within=config),
    script:
        "../scripts/ss_evaluate.py"


rule ss_ablation_cell:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        features=f"{SS}/features",
    output:
        f"{SS}/ablation/cells/{{cell}}.parquet",
    log:
        "logs/ss_ablation_cell/{cell}.log",
    benchmark:
        "logs/ss_ablation_cell/{cell}.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        roles=simsearch_roles(),
        classes=lookup(dpath="simsearch/classes", within=config),
        user=lookup(dpath="simsearch/user", within=config),
        search=lookup(dpath="simsearch/search", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        noisy=lookup(dpath="simsearch/noisy", within=config),
        train=lookup(dpath="simsearch/train", within=config),
        detect=lookup(dpath="simsearch/detect", within=config),
        evaluate=lookup(dpath="simsearch/evaluate", within=config),
        ablation=lookup(dpath="simsearch/ablation", within=config),
        device=config["device"],
        seed=lambda wc: stage_seed("ss_ablation_cell", wc.cell),
    script:
        "../scripts/ss_ablation_cell.py"


rule ss_ablation:
    input:
        cells=expand(f"{SS}/ablation/cells/{{cell}}.parquet", cell=SS_CELLS),
        supervised=f"{SS}/detect/supervised/metrics.json",
    output:
        table=f"{SS}/ablation/table.tsv",
        html=report(
            f"{SS}/ablation/table.html",
            caption="../report/ss_ablation_table.rst",
            category="SimSearch",
            labels={"figure": "ablation table"},
        ),
        violin=report(
            f"{SS}/ablation/violin.png",
            caption="../report/ss_ablation_violin.rst",
            category="SimSearch",
            labels={"figure": "ablation violins"},
        ),
    log:
        "logs/ss_ablation/ss_ablation.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/ss_ablation.py"


rule ss_annotation_report:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
        features=f"{SS}/features",
        annotations=simsearch_annotations(),
    output:
        correlation=report(
            f"{SS}/report/correlation.html",
            caption="../report/ss_correlation.rst",
            category="SimSearch",
            labels={"figure": "channel correlation"},
        ),
        proposals=report(
            f"{SS}/report/proposals.png",
            caption="../report/ss_proposals.rst",
            category="SimSearch",
            labels={"figure": "annotations"},
        ),
    log:
        "logs/ss_annotation_report/ss_annotation_report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        channels=lookup(dpath="simsearch/channels", within=config),
    script:
        "../scripts/ss_annotation_report.py"


rule ss_cells:
    input:
        sheet=simsearch_sheet(),
        sheet_files=simsearch_files(),
    output:
        curve=f"{SS}/cells/curve.tsv",
        summary=f"{SS}/cells/summary.tsv",
        calls=f"{SS}/cells/calls.parquet",
        table=report(
            f"{SS}/cells/table.html",
            caption="../report/ss_cells.rst",
            category="SimSearch",
            subcategory="Per-cell calls",
            labels={"figure": "accuracy by labelled cells per class"},
        ),
        figure=report(
            f"{SS}/cells/curve.png",
            caption="../report/ss_cells.rst",
            category="SimSearch",
            subcategory="Per-cell calls",
            labels={"figure": "accuracy curve"},
        ),
    log:
        "logs/ss_cells/ss_cells.log",
    benchmark:
        "logs/ss_cells/ss_cells.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: shared_threads(2)
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=30,
        gpu=gpus(),
    params:
        search=lookup(dpath="simsearch/search", within=config),
        channels=lookup(dpath="simsearch/channels", within=config),
        cells=lookup(dpath="simsearch/cells", within=config),
        device=config["device"],
        seed=stage_seed("ss_cells"),
    script:
        "../scripts/ss_cells.py"


rule ss_report:
    input:
        metrics=expand(
            f"{SS}/detect/{{strategy}}/metrics.json", strategy=simsearch_models()
        ),
        curves=expand(
            f"{SS}/detect/{{strategy}}/pr.parquet", strategy=simsearch_models()
        ),
    output:
        summary=report(
            f"{SS}/report/summary.html",
            caption="../report/ss_summary.rst",
            category="SimSearch",
            labels={"figure": "detection AUC"},
        ),
        curves=report(
            f"{SS}/report/pr_curves.png",
            caption="../report/ss_pr_curves.rst",
            category="SimSearch",
            labels={"figure": "precision-recall"},
        ),
    log:
        "logs/ss_report/ss_report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        strategies=simsearch_models(),
    script:
        "../scripts/ss_report.py"
