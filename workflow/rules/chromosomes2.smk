"""Chromosome track II: BBDM generation, classifier, UMAP + Gaussian-mixture filter and
the classifier comparison (after Tallon et al.)."""


include: "chromosomes2_common.smk"


rule bbdm_train:
    input:
        **crop_files("train"),
    output:
        model="results/chromosomes/bbdm/model.pt",
        history="results/chromosomes/bbdm/history.parquet",
    log:
        "logs/bbdm_train/bbdm_train.log",
    benchmark:
        "logs/bbdm_train/bbdm_train.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=600,
        gpu=gpus(),
    params:
        settings={k: v for k, v in CHROM2["bbdm"].items() if k != "sample"},
        checkpoint="results/chromosomes/bbdm/checkpoint.pt",
        device=config["device"],
        seed=stage_seed("bbdm_train"),
    script:
        "../scripts/bbdm_train.py"


rule bbdm_sample:
    input:
        **crop_files("unannotated"),
        model="results/chromosomes/bbdm/model.pt",
        train_stack="results/chromosomes/crops/train.tif",
        train_table="results/chromosomes/crops/train.parquet",
    output:
        stack="results/chromosomes/generated/bbdm.tif",
        table="results/chromosomes/generated/bbdm.parquet",
        gallery=report(
            "results/chromosomes/report/bbdm_gallery.png",
            caption="../report/chrom_bbdm_gallery.rst",
            category="Chromosomes",
            subcategory="Generation",
            labels={"figure": "BBDM samples beside their DAPI"},
        ),
    log:
        "logs/bbdm_sample/bbdm_sample.log",
    benchmark:
        "logs/bbdm_sample/bbdm_sample.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=600,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/bbdm/sample", within=config),
        gallery=lookup(dpath="chromosomes/report/gallery_per_class", within=config),
        device=config["device"],
        seed=stage_seed("bbdm_sample"),
    script:
        "../scripts/bbdm_sample.py"


rule chrom_train:
    input:
        unpack(synthetic_inputs),
        train_stack="results/chromosomes/crops/train.tif",
        train_table="results/chromosomes/crops/train.parquet",
        test_stack="results/chromosomes/crops/test.tif",
        test_table="results/chromosomes/crops/test.parquet",
    output:
        models=expand(
            "results/chromosomes/classifier/{{chrom_data}}/{{chrom_aug}}/seed_{i}.pt",
            i=range(len(CHROM_SEEDS)),
        ),
        metrics="results/chromosomes/classifier/{chrom_data}/{chrom_aug}/metrics.tsv",
        predictions="results/chromosomes/classifier/{chrom_data}/{chrom_aug}/predictions.parquet",
    log:
        "logs/chrom_train/{chrom_data}_{chrom_aug}.log",
    benchmark:
        "logs/chrom_train/{chrom_data}_{chrom_aug}.benchmark.tsv"
    wildcard_constraints:
        chrom_data="real|bbdm|bbdm_filtered|cyclegan",
        chrom_aug="plain|augmented",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=240,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/classifier", within=config),
        augmented=lambda wc: wc.chrom_aug == "augmented",
        seeds=CHROM_SEEDS,
        device=config["device"],
    script:
        "../scripts/chrom_train.py"


rule chrom_features:
    input:
        unpack(feature_set_input),
        model=FEATURE_MODEL,
    output:
        "results/chromosomes/features/{feature_set}.parquet",
    log:
        "logs/chrom_features/{feature_set}.log",
    wildcard_constraints:
        feature_set="train|bbdm|cyclegan",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=gpus(),
    params:
        device=config["device"],
    script:
        "../scripts/chrom_features.py"


rule umap_filter:
    input:
        unpack(filter_inputs),
        real="results/chromosomes/features/train.parquet",
        train_stack="results/chromosomes/crops/train.tif",
        train_table="results/chromosomes/crops/train.parquet",
    output:
        kept=expand(
            "results/chromosomes/filter/kept_{generator}.parquet",
            generator=CHROM_GENERATORS,
        ),
        coordinates="results/chromosomes/filter/coordinates.parquet",
        summary="results/chromosomes/filter/summary.tsv",
        summary_html=report(
            "results/chromosomes/report/filter_summary.html",
            caption="../report/chrom_filter_summary.rst",
            category="Chromosomes",
            subcategory="Filter",
            labels={"figure": "what the filter kept"},
        ),
        umap=report(
            "results/chromosomes/report/filter_umap.png",
            caption="../report/chrom_filter_umap.rst",
            category="Chromosomes",
            subcategory="Filter",
            labels={"figure": "UMAP of real and generated crops"},
        ),
        ssim=report(
            "results/chromosomes/report/filter_ssim.png",
            caption="../report/chrom_filter_ssim.rst",
            category="Chromosomes",
            subcategory="Filter",
            labels={"figure": "similarity of kept and dropped crops"},
        ),
    log:
        "logs/umap_filter/umap_filter.log",
    benchmark:
        "logs/umap_filter/umap_filter.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=lookup(dpath="chromosomes/filter", within=config),
        generators=CHROM_GENERATORS,
        seed=stage_seed("umap_filter"),
    script:
        "../scripts/umap_filter.py"


rule chrom_compare:
    input:
        expand(
            "results/chromosomes/classifier/{chrom_data}/{chrom_aug}/metrics.tsv",
            chrom_data=CHROM_DATA,
            chrom_aug=CHROM_AUGS,
        ),
    output:
        table="results/chromosomes/compare/compare.tsv",
        html=report(
            "results/chromosomes/report/compare.html",
            caption="../report/chrom_compare.rst",
            category="Chromosomes",
            subcategory="Comparison",
            labels={"figure": "classifier comparison by training data"},
        ),
    log:
        "logs/chrom_compare/chrom_compare.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        variants=[(d, a) for d in CHROM_DATA for a in CHROM_AUGS],
    script:
        "../scripts/chrom_compare.py"


rule cyclegan_train:
    input:
        **crop_files("train"),
        source_stack="results/chromosomes/crops/unannotated.tif",
        source_table="results/chromosomes/crops/unannotated.parquet",
    output:
        model="results/chromosomes/cyclegan/model.pt",
        history="results/chromosomes/cyclegan/history.parquet",
    log:
        "logs/cyclegan_train/cyclegan_train.log",
    benchmark:
        "logs/cyclegan_train/cyclegan_train.benchmark.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=600,
        gpu=gpus(),
    params:
        settings={k: v for k, v in CHROM2["cyclegan"].items() if k != "sample"},
        checkpoint="results/chromosomes/cyclegan/checkpoint.pt",
        device=config["device"],
        seed=stage_seed("cyclegan_train"),
    script:
        "../scripts/cyclegan_train.py"


rule cyclegan_sample:
    input:
        **crop_files("unannotated"),
        model="results/chromosomes/cyclegan/model.pt",
    output:
        stack="results/chromosomes/generated/cyclegan.tif",
        table="results/chromosomes/generated/cyclegan.parquet",
    log:
        "logs/cyclegan_sample/cyclegan_sample.log",
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=gpus(),
    params:
        settings=lookup(dpath="chromosomes/cyclegan/sample", within=config),
        device=config["device"],
        seed=stage_seed("cyclegan_sample"),
    script:
        "../scripts/cyclegan_sample.py"
