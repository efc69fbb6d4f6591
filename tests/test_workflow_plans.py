"""The Snakemake workflow without a full run: lint, dry runs of the default and SLURM setups,
bad configs and sample sheets stopped before any job, bad images confined to their own job."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from workflow_helpers import BIN, FULL_PLAN, ROOT, TINY, job_environment, planned, snakemake

from fishline.config import load_config

pytestmark = pytest.mark.workflow


def test_snakefmt_clean() -> None:
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_snakemake_lint_clean(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_ruff_clean() -> None:
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "src", "tests", "benchmarks", "workflow/scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_default_config(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "-n", config=ROOT / "config" / "config.yaml")
    assert planned(result) == FULL_PLAN
    # a plain run loads the local profile by itself (profiles/ next to the Snakefile)
    assert "profiles/default for setting default" in result.stdout + result.stderr


def test_planning_imports_no_heavy_library(tmp_path: Path) -> None:
    """Parsing the workflow and planning its jobs need only the light part of the stack
    (what the host needs under --use-conda): no torch, Cellpose, scikit-learn or matplotlib."""
    probe = (
        "import sys\n"
        "from snakemake.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as end:\n"
        "    assert not end.code, end.code\n"
        "heavy = ('torch', 'cellpose', 'sklearn', 'matplotlib', 'umap')\n"
        "print('heavy:', sorted(name for name in heavy if name in sys.modules))\n"
    )
    arguments = ["-n", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    configs = ["--configfile", str(ROOT / "config" / "config.yaml")]
    result = subprocess.run(
        [str(BIN / "python"), "-c", probe, *arguments, *configs],
        capture_output=True,
        text=True,
        env=job_environment(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "heavy: []" in result.stdout, result.stdout[-2000:]


def test_dry_run_slurm_profile(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "-n", "--workflow-profile", "slurm")  # found by name
    assert planned(result)["fish_paint"] == 5
    assert "profiles/slurm for setting default" in result.stdout + result.stderr


def test_bad_config_stops_before_any_job(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"fish": {"paint": {"spot_sgima": [1, 2]}}}))
    result = snakemake(tmp_path, "--cores", "1", config=bad)
    assert result.returncode != 0
    assert "[fish.paint.spot_sgima]: unknown key (did you mean 'spot_sigma'?)" in result.stderr
    assert not (tmp_path / "results").exists()
    # the workflow's own config file, edited by hand and broken: file, line and column
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text("fish:\n  paint:\n   chunk_size: [1,\n")
    result = snakemake(tmp_path, "-n", config=TINY)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "config/config.yaml: not valid YAML" in message and "(line 4, column 1)" in message


def test_real_metaphase_sheet_is_planned_and_checked(tmp_path: Path) -> None:
    sheet = tmp_path / "real.tsv"
    image = tmp_path / "spread.tif"
    tifffile.imwrite(image, np.zeros((2, 64, 64), np.uint8))
    sheet.write_text(f"sample\timage\tdapi\ns1\t{image.name}\t0\n")
    config = yaml.safe_load(TINY.read_text())
    config["chromosomes"]["real"] = {"lab": str(sheet)}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config))
    plan = planned(snakemake(tmp_path, "-n", config=good))
    assert plan["segment"] == 4 and plan["segment_spread"] == 1 and plan["segment_collect"] == 1
    assert plan["chrom_crops"] == 5
    assert plan["segment_evaluate"] == 5  # overlays for every set, scores where truth exists
    assert "chrom_realism" not in plan  # no real truth to compare the painter with
    tifffile.imwrite(tmp_path / "truth.tif", np.zeros((64, 64), np.uint8))
    sheet.write_text(f"sample\timage\tdapi\tmask\ns1\t{image.name}\t0\ttruth.tif\n")
    assert planned(snakemake(tmp_path, "-n", config=good))["chrom_realism"] == 1
    sheet.write_text("sample\timage\tdapi\ns1\tmissing.tif\t0\n")
    result = snakemake(tmp_path, "-n", config=good)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "chromosomes.real.lab" in message and "row 2, image" in message
    assert "file not found" in message


def test_env_pins_match_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / "fishline.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(project["dependencies"])
    assert "python=3.11" in env["dependencies"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_installs_the_pinned_slurm_plugin() -> None:
    from importlib.metadata import version

    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"snakemake-executor-plugin-slurm==([\d.]+)", makefile)[1]
    assert version("snakemake-executor-plugin-slurm") == pin


def test_bad_library_file_fails_with_one_clear_message(tmp_path: Path) -> None:
    (tmp_path / "n1.tif").write_bytes(b"not a tiff")
    tifffile.imwrite(tmp_path / "m1.tif", pd.DataFrame([[1]]).to_numpy().astype("uint8"))
    (tmp_path / "lib.tsv").write_text("id\timage\tmask\nn1\tn1.tif\tm1.tif\n")
    config = yaml.safe_load(TINY.read_text())
    config["fish"]["paint"]["nuclei"] = {"source": "library", "library": str(tmp_path / "lib.tsv")}
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", "results/fish/synthetic/val.tif", config=path)
    assert result.returncode != 0
    assert f"fishline error: {tmp_path / 'n1.tif'} [n1]: cannot read TIFF" in result.stderr
    assert "Traceback" not in (tmp_path / "logs/fish_paint/val.log").read_text()
    assert not list((tmp_path / "results").rglob("*.tif"))


def test_real_slide_sheet_is_planned_and_checked(tmp_path: Path) -> None:
    image = tmp_path / "field.tif"
    tifffile.imwrite(image, np.zeros((3, 64, 64), np.uint8), photometric="minisblack")
    sheet = tmp_path / "slides.tsv"
    sheet.write_text(
        "sample\tfield\timage\tdapi\ttarget\treference\n"
        f"p1\ta\t{image.name}\t2\t1\t0\np1\tb\t{image.name}\t2\t1\t0\n"
        f"p2\ta\t{image.name}\t2\t1\t0\n"
    )
    config = yaml.safe_load(TINY.read_text())
    config["slides"]["real"] = {"lab": {"sheet": str(sheet), "crops": {"outside": "zero"}}}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config))
    plan = planned(snakemake(tmp_path, "-n", config=good))
    assert plan["slides_call"] == 3 + 2 and plan["slides_summary"] == 2  # painted + lab
    sheet.write_text("sample\timage\tdapi\ttarget\np1\tmissing.tif\t2\t1\n")
    result = snakemake(tmp_path, "-n", config=good)
    assert result.returncode != 0
    text = result.stderr + result.stdout
    assert "slides.real.lab" in text and "file not found" in text and "missing.tif" in text


def test_a_corrupt_metaphase_fails_only_its_own_spread(tmp_path: Path) -> None:
    """Each spread of a real set is segmented by its own job: a truncated image fails its
    job only (with --keep-going the good spread is kept), and once it is fixed the rerun
    segments that spread alone before joining the set."""
    spread = np.zeros((96, 96), np.uint16)
    spread[20:70, 40:48] = 3000  # one chromosome-like rod
    tifffile.imwrite(tmp_path / "good.tif", spread)
    tifffile.imwrite(tmp_path / "bad.tif", spread)
    (tmp_path / "bad.tif").write_bytes((tmp_path / "bad.tif").read_bytes()[:300])
    sheet = tmp_path / "lab.tsv"
    sheet.write_text("sample\timage\tdapi\ngood\tgood.tif\t0\nbad\tbad.tif\t0\n")
    config = yaml.safe_load(TINY.read_text())
    config["chromosomes"]["real"] = {"lab": str(sheet)}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config))
    model = tmp_path / "results/chromosomes/models/cellpose.pt"
    model.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "resources/models/chromosomes_cellpose.pt", model)
    rules = ["--allowed-rules", "segment_spread", "segment_collect"]
    target = ["--", "results/chromosomes/segment/lab"]
    result = snakemake(tmp_path, "--cores", "2", "--keep-going", *rules, *target, config=path)
    assert result.returncode != 0
    spreads = tmp_path / "results/chromosomes/segment/lab.spreads"
    assert (spreads / "good/good.pred.tif").is_file() and not (spreads / "bad").exists()
    log = (tmp_path / "logs/segment_spread/lab/bad.log").read_text()
    assert "bad.tif" in log and "sample bad" in log
    tifffile.imwrite(tmp_path / "bad.tif", spread)
    assert planned(snakemake(tmp_path, "-n", *rules, *target, config=path)) == {
        "segment_spread": 1,
        "segment_collect": 1,
    }
    result = snakemake(tmp_path, "--cores", "2", *rules, *target, config=path)
    assert result.returncode == 0, result.stderr[-3000:]
    masks = pd.read_csv(tmp_path / "results/chromosomes/segment/lab/masks.tsv", sep="\t")
    assert list(masks["sample"]) == ["good", "bad"]  # sheet order
    for pred in masks["pred"]:
        assert Path(pred).parent == tmp_path / "results/chromosomes/segment/lab"
        assert tifffile.imread(pred).shape == (96, 96)


def test_an_edited_sheet_image_reruns_its_sample_only(tmp_path: Path) -> None:
    """Images named in a slide sheet are inputs of their sample's job: overwriting one
    plans exactly that sample's call again (outputs stand in as empty files)."""
    for name in ("one.tif", "two.tif"):
        tifffile.imwrite(tmp_path / name, np.zeros((3, 64, 64), np.uint8), photometric="minisblack")
    sheet = tmp_path / "slides.tsv"
    sheet.write_text(
        "sample\timage\tdapi\ttarget\treference\np1\tone.tif\t2\t1\t0\np2\ttwo.tif\t2\t1\t0\n"
    )
    config = yaml.safe_load(TINY.read_text())
    config["slides"]["real"] = {"lab": str(sheet)}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config))
    calls = (
        "cells.parquet",
        "crops.tif",
        "crops.parquet",
        "timing.json",
        "overlay.png",
        "card.html",
    )
    outputs = [f"results/fish/slides/lab/{s}/{name}" for s in ("p1", "p2") for name in calls]
    made = ["results/fish/models/joint.pt", "results/fish/slides/models/nuclei.pt", *outputs]
    for name in made:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    targets = ["--", *outputs]
    touched = snakemake(tmp_path, "--cores", "1", "--touch", *targets, config=path)
    assert touched.returncode == 0, touched.stderr[-3000:]
    assert planned(snakemake(tmp_path, "-n", *targets, config=path)) == {}
    tifffile.imwrite(tmp_path / "one.tif", np.ones((3, 64, 64), np.uint8), photometric="minisblack")
    result = snakemake(tmp_path, "-n", *targets, config=path)
    assert planned(result) == {"slides_call": 1}
    assert "sample=p1" in result.stdout and "sample=p2" not in result.stdout


# Rules that train or run a network: on a CUDA config each asks the scheduler for one GPU.
NETWORK_RULES = {
    "fish_train",
    "fish_evaluate",
    "fish_umap",
    "cellpose_train",
    "chrom_self_train",
    "segment",
    "segment_spread",
    "slides_cellpose_train",
    "slides_call",
    "bbdm_train",
    "bbdm_sample",
    "cyclegan_train",
    "cyclegan_sample",
    "chrom_train",
    "chrom_features",
    "ss_features",
    "ss_train",
    "ss_detect",
    "ss_segment",
    "ss_ablation_cell",
    "ss_cells",
}


def test_gpus_requested_by_network_rules_only(tmp_path: Path) -> None:
    config = load_config(ROOT / "config" / "config.yaml")
    config["device"] = "cuda"
    config["simsearch"]["detect"]["segmentation"] = True  # every optional rule in the DAG
    config["simsearch"]["ablation"]["enabled"] = True
    config["chromosomes"]["cyclegan"]["enabled"] = True
    config["slides"]["cellpose"]["model"] = None  # trains the nucleus model here
    tifffile.imwrite(tmp_path / "spread.tif", np.zeros((64, 64), np.uint16))
    (tmp_path / "lab.tsv").write_text("sample\timage\tdapi\ns1\tspread.tif\t0\n")
    config["chromosomes"]["real"] = {"lab": str(tmp_path / "lab.tsv")}
    config["chromosomes"]["self_training"]["enabled"] = True
    path = tmp_path / "cuda.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(tmp_path, "-n", config=path)
    assert result.returncode == 0, result.stderr[-3000:]
    gpus: dict[str, set[int]] = {}
    for block in re.split(r"^(?=(?:local)?rule \w+:)", result.stdout, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block)[1]
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)[1]
        found = re.search(r"\bgpu=(\d+)", resources)
        gpus.setdefault(rule, set()).add(int(found[1]) if found else 0)
    assert {rule for rule, counts in gpus.items() if counts == {1}} == NETWORK_RULES
    assert all(counts == {0} for rule, counts in gpus.items() if rule not in NETWORK_RULES)


def test_slides_classifier_is_a_trained_entry_or_a_shipped_file(tmp_path: Path) -> None:
    """Calling one painted field: with the shipped classifier file (the default) nothing is
    trained; with a fish.models entry (`joint`) its classifier is painted for and trained
    first."""
    target = "results/fish/slides/painted/field_000/cells.parquet"
    config = load_config(ROOT / "config" / "config.yaml")
    shipped = planned(
        snakemake(tmp_path / "shipped", "-n", target, config=ROOT / "config/config.yaml")
    )
    assert shipped == {"fish_fields": 1, "slides_call": 1}
    config["slides"]["classifier"] = "joint"
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(config))
    trained = planned(snakemake(tmp_path / "joint", "-n", target, config=path))
    assert trained == {"fish_paint": 1, "fish_train": 1, "fish_fields": 1, "slides_call": 1}


def test_simsearch_switched_off_plans_no_simsearch_job(tmp_path: Path) -> None:
    """`simsearch.enabled: false` runs every other track (it once stopped the workflow,
    asking for ground-truth points the switched-off track does not need)."""
    path = tmp_path / "off.yaml"
    path.write_text("simsearch:\n  enabled: false\n")
    result = snakemake(tmp_path, "-n", config=path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned(result)
    assert jobs and not any(rule.startswith("ss_") for rule in jobs)
    assert "segment" in jobs and "fish_train" in jobs


def test_self_training_segments_its_set_and_reruns_alone_after_a_change(tmp_path: Path) -> None:
    """With chromosomes.self_training on, a real set's spreads are segmented by the
    self-trained model (painted sets keep the painted one), and a changed fine-tuning
    setting replans the self-training and that set's segmentation only."""
    spread = np.zeros((96, 96), np.uint16)
    spread[20:70, 40:48] = 3000
    for name in ("one.tif", "two.tif"):
        tifffile.imwrite(tmp_path / name, spread)
    tifffile.imwrite(tmp_path / "truth.tif", (spread > 0).astype(np.uint8))
    sheet = tmp_path / "lab.tsv"
    sheet.write_text(
        "sample\timage\tdapi\tmask\ns1\tone.tif\t0\ttruth.tif\ns2\ttwo.tif\t0\ttruth.tif\n"
    )
    config = yaml.safe_load(TINY.read_text())
    config["chromosomes"]["real"] = {"lab": str(sheet)}
    config["chromosomes"]["self_training"] = {"enabled": True, "epochs": 1, "images_per_epoch": 2}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", config=path)
    assert planned(result)["chrom_self_train"] == 1
    blocks = re.split(r"^(?=(?:local)?rule \w+:)", result.stdout, flags=re.M)
    inputs = {
        re.match(r"rule (\w+):", block)[1] + re.search(r"wildcards: (.*)$", block, re.M)[1]: (
            re.search(r"^\s+input: (.*)$", block, re.M)[1]
        )
        for block in blocks
        if block.startswith(("rule segment:", "rule segment_spread:"))
    }
    assert len(inputs) == 2 + 4  # two real spreads, four painted sets
    for job, files in inputs.items():
        self_trained = "cellpose_self_trained.pt" in files
        assert self_trained == job.startswith("segment_spread"), (job, files)

    rules = ["--allowed-rules", "chrom_self_train", "chrom_self_train_evaluate"]
    rules += ["segment_spread", "segment_collect", "chrom_paint"]  # painted: trained on too
    before = "results/chromosomes/self_training_scores/lab.metrics.json"
    target = ["--", "results/chromosomes/segment/lab", before]
    model = tmp_path / "results/chromosomes/models/cellpose.pt"
    model.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "resources/models/chromosomes_cellpose.pt", model)
    result = snakemake(tmp_path, "--cores", "2", *rules, *target, config=path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "results/chromosomes/self_training/summary.tsv", sep="\t")
    assert list(summary["sample"]) == ["s1", "s2"] and (summary["pseudo_chromosomes"] == 1).all()
    assert (
        "fine-tuning 1 epochs"
        in (tmp_path / "logs/chrom_self_train/chrom_self_train.log").read_text()
    )
    scores = json.loads((tmp_path / before).read_text())  # the painted model's pseudo-masks
    assert scores["images"] == 2 and scores["f1@0.5"] == 1.0
    assert planned(snakemake(tmp_path, "-n", *rules, *target, config=path)) == {}
    config["chromosomes"]["self_training"]["epochs"] = 2
    path.write_text(yaml.safe_dump(config))
    assert planned(snakemake(tmp_path, "-n", *rules, *target, config=path)) == {
        "chrom_self_train": 1,
        "chrom_self_train_evaluate": 1,
        "segment_spread": 2,
        "segment_collect": 1,
    }
