"""The Snakemake workflow on a tiny end-to-end run: its outputs, the report, and which jobs a
config change reruns."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, browser_or_skip
from workflow_helpers import (
    FISH_PLAN,
    OVERVIEW_PLAN,
    SLIDES_PLAN,
    SLIDES_TRAINING_PLAN,
    TINY,
    planned,
    snakemake,
)

from fishline.config import load_config
from fishline.errors import InputError
from fishline.simsearch.settings import SearchSettings
from fishline.simsearch.stages import SheetImages, annotated_patches

# The first test here also runs the module's tiny workflow (3.7 min on a 2-core EPYC without
# AMX beside the other worker, 9.5 min held to 0.77 of its cores as the slower kind), so the
# limit is wider.
pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny end-to-end run of the default DAG (module-wide, reused by several tests)."""
    workdir = tmp_path_factory.mktemp("run")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_tiny_run_outputs(finished_run: Path) -> None:
    train = pd.read_parquet(finished_run / "results/fish/synthetic/train.parquet")
    stack = tifffile.imread(finished_run / "results/fish/synthetic/train.tif")
    assert stack.shape == (48, 3, 128, 128)
    ood = pd.read_parquet(finished_run / "results/fish/synthetic/ood.parquet")
    assert (ood["class_name"] == "ood").all() and (ood["label"] == -1).all()
    coordinates = pd.read_parquet(finished_run / "results/fish/compare/umap_joint.parquet")
    assert set(coordinates["set"]) == {"train", "test", "shifted", "ood"}
    assert coordinates[["umap_x", "umap_y"]].notna().all().all()
    assert train["class_name"].value_counts().to_dict() == {
        "normal": 16,
        "gain": 16,
        "amplification": 16,
    }
    sheet = pd.read_csv(finished_run / "results/fish/fields/sheet.tsv", sep="\t")
    assert len(sheet) == 3
    for rule in ("fish_paint", "fish_fields", "fish_paint_report"):
        assert any((finished_run / "logs" / rule).glob("*.log")), rule


@pytest.fixture(scope="module")
def report(finished_run: Path) -> Path:
    """The Snakemake report of the tiny run."""
    result = snakemake(finished_run, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    return finished_run / "report.html"


def test_report_after_tiny_run(report: Path) -> None:
    html = report.read_text(errors="ignore")
    assert "FISH painter" in html and "realism.png" in html and "conditions.png" in html
    assert "MYCN slides" in html and "overlay.png" in html
    assert "SimSearch" in html and "violin.png" in html and "proposals.png" in html
    assert "Per-cell calls" in html and "curve.png" in html
    assert "Start with the headline figure" in html and "overview.png" in html


# A result's page in the report: every image decodes, every table has rows.
CHECK_RESULT = """async ([mime, uri]) => {
    if (mime.startsWith('image/')) {
        const image = new Image();
        image.src = uri;
        try { await image.decode(); } catch (error) { return 'image does not decode'; }
        return image.naturalWidth > 0 ? '' : 'empty image';
    }
    if (mime === 'text/html') {
        const page = new DOMParser().parseFromString(await (await fetch(uri)).text(), 'text/html');
        const tables = [...page.querySelectorAll('table')];
        if (!tables.length && !page.body.textContent.trim()) return 'empty page';
        return tables.some(t => !t.querySelector('td')) ? 'a table without rows' : '';
    }
    return '';
}"""


def test_report_in_the_browser(report: Path) -> None:
    """Open the report in headless chromium, visit every menu category and every result in
    it: no script error, every figure decodes, no empty table."""
    sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:  # type: ignore[operator]
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri())
        page.wait_for_function("typeof app !== 'undefined' && typeof results !== 'undefined'")
        landing = page.inner_text("body")
        assert "Start with the headline figure" in landing and "(menu: SimSearch)" in landing
        assert "System Message" not in landing  # docutils' sign of a broken link or markup
        categories = page.evaluate("categories")
        assert set(categories) == {
            "Overview",
            "FISH painter",
            "FISH classifier",
            "Chromosomes",
            "MYCN slides",
            "SimSearch",
        }
        problems = {}
        for category, subcategories in categories.items():
            page.evaluate("name => app.showCategory(name)", category)
            page.wait_for_timeout(100)
            for path in [p for paths in subcategories.values() for p in paths]:
                labels = page.evaluate("path => results[path].labels", path)
                assert labels, f"{path} has no label in the menu"  # no raw path shown
                page.evaluate("path => app.showResultInfo(path)", path)
                result = page.evaluate(
                    "path => [results[path].mime_type, results[path].data_uri]", path
                )
                problem = page.evaluate(CHECK_RESULT, result)
                if problem:
                    problems[path] = problem
        browser.close()
    assert not errors, errors
    assert not problems, problems


def _changed(finished_run: Path, edit: dict) -> dict[str, int]:
    config = yaml.safe_load(TINY.read_text())
    merged = copy.deepcopy(config)  # edited in place, key order kept as a user would
    for path, value in edit.items():
        node = merged
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    changed = finished_run / "changed.yaml"
    changed.write_text(yaml.safe_dump(merged, sort_keys=False))
    return planned(snakemake(finished_run, "-n", config=changed))


def test_rerun_nothing_when_nothing_changed(finished_run: Path) -> None:
    assert planned(snakemake(finished_run, "-n")) == {}


def test_rerun_only_report_when_report_setting_changes(finished_run: Path) -> None:
    assert _changed(finished_run, {"report/gallery_per_class": 2}) == {
        "fish_paint_report": 1,
        "all": 1,
    }


def test_rerun_fields_and_report_when_field_setting_changes(finished_run: Path) -> None:
    # The slide calls run on the painted fields, and their nucleus model trains on fields
    # painted with the same settings.
    assert _changed(finished_run, {"fish/fields/purity": 0.9}) == {
        "fish_fields": 1,
        "fish_paint_report": 1,
        **SLIDES_PLAN,
        **SLIDES_TRAINING_PLAN,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_rerun_everything_downstream_of_painter_settings(finished_run: Path) -> None:
    plan = _changed(finished_run, {"fish/paint/spot_cut": 0.25})
    assert plan == {**FISH_PLAN, **SLIDES_PLAN, **SLIDES_TRAINING_PLAN, **OVERVIEW_PLAN, "all": 1}


def test_rerun_segmentation_not_training_when_inference_setting_changes(
    finished_run: Path,
) -> None:
    plan = _changed(finished_run, {"chromosomes/segment/flow_threshold": 0.6})
    assert plan == {
        "segment": 4,
        "segment_evaluate": 4,
        "chrom_crops": 4,
        "chrom_report": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_rerun_one_painted_set_when_its_size_changes(finished_run: Path) -> None:
    plan = _changed(
        finished_run, {"chromosomes/spreads": {"train": 2, "val": 1, "test": 2, "unannotated": 1}}
    )
    assert plan == {
        "chrom_paint": 1,
        "segment": 1,
        "segment_evaluate": 1,
        "chrom_crops": 1,
        "chrom_report": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_chromosome_outputs(finished_run: Path) -> None:
    results = finished_run / "results/chromosomes"
    sheet = pd.read_csv(results / "synthetic/train/sheet.tsv", sep="\t")
    assert len(sheet) == 2 and sheet["mask"].notna().all()
    withheld = pd.read_csv(results / "synthetic/unannotated/sheet.tsv", sep="\t")
    assert withheld["mask"].isna().all()
    assert not list((results / "synthetic/unannotated").glob("*.mask.tif"))
    for name in ("train", "val", "test", "unannotated"):
        metrics = json.loads((results / f"segment/{name}.metrics.json").read_text())
        assert metrics["has_truth"] is (name != "unannotated")
        stack = tifffile.imread(results / f"crops/{name}.tif")
        table = pd.read_parquet(results / f"crops/{name}.parquet")
        assert len(stack) == len(table) and table["index"].tolist() == list(range(len(table)))
        if len(table):
            assert stack.shape[1:] == (3, 32, 32)
        if name == "unannotated":
            assert "label" not in table  # truth withheld
        elif len(table):
            assert set(table["label"]) <= {"normal", "aberration", "unmatched"}
            matched = table[table["label"] != "unmatched"]
            assert (matched["truth_iou"] >= 0.5).all()
    model = torch.load(results / "models/cellpose.pt", weights_only=False)
    assert model["kind"] == "cellpose" and model["metadata"]["epochs"] == 2
    segmentation = pd.read_csv(results / "report/segmentation.tsv", sep="\t")
    assert sorted(segmentation["set"]) == ["test", "train", "val"]
    assert segmentation["baseline f1@0.5"].between(0, 1).all()
    assert (segmentation["truth per spread"] >= 10).all()  # tiny.yaml paints 18-22
    for rule in ("chrom_paint", "cellpose_train", "segment", "chrom_crops", "chrom_report"):
        assert any((finished_run / "logs" / rule).glob("*.log")), rule


def test_rerun_one_model_when_its_setting_changes(finished_run: Path) -> None:
    models = {
        "joint": {"method": "joint", "augment": "heavy"},
        "ce": {"method": "ce", "augment": "heavy", "smoothing": 0.05},
    }
    assert _changed(finished_run, {"fish/models": models}) == {
        "fish_train": 1,
        "fish_evaluate": 2,
        "fish_umap": 1,
        "fish_compare": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_classifier_outputs(finished_run: Path) -> None:
    summary = pd.read_csv(finished_run / "results/fish/compare/summary.tsv", sep="\t")
    assert sorted(zip(summary["model"], summary["test_set"], strict=True)) == [
        ("ce", "shifted"),
        ("ce", "test"),
        ("joint", "shifted"),
        ("joint", "test"),
        ("spots", "shifted"),
        ("spots", "test"),
    ]
    assert summary["n"].eq(12).all() and summary["accuracy"].between(0, 1).all()
    assert (summary["ece"] - summary["ece_positive"] - summary["ece_negative"]).abs().max() < 1e-3
    retention = (finished_run / "results/fish/compare/retention.html").read_text()
    assert "Ours Heavy" in retention and "fishline shifted" in retention


def test_reordering_config_keys_reruns_nothing(finished_run: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    reordered = finished_run / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(dict(reversed(config.items())), sort_keys=True))
    assert planned(snakemake(finished_run, "-n", config=reordered)) == {}


def test_augmentation_ablation_is_planned(finished_run: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["fish"]["ablation"] = {"enabled": True, "model": "joint"}
    path = finished_run / "ablation.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = planned(snakemake(finished_run, "-n", config=path))
    assert plan == {"fish_train": 8, "fish_evaluate": 16, "fish_ablation": 1, "all": 1}


def test_slides_outputs(finished_run: Path) -> None:
    slides = finished_run / "results/fish/slides"
    summary = pd.read_csv(slides / "painted/summary.tsv", sep="\t")
    assert summary["sample"].tolist() == ["field_000", "field_001", "field_002"]
    assert (summary["certain"] + summary["uncertain"] == summary["cells"]).all()
    assert summary["segmentation_ap@0.5"].between(0, 1).all()  # painted fields have truth
    cells = pd.read_parquet(slides / "painted/cells.parquet")
    assert len(cells) == summary["cells"].sum()
    for sample in summary["sample"]:
        assert (slides / f"painted/{sample}/overlay.png").stat().st_size > 0
    model = torch.load(slides / "models/nuclei.pt", weights_only=False)
    assert model["class_names"] == ["nucleus"] and model["metadata"]["epochs"] == 3
    for rule in ("slides_train_fields", "slides_cellpose_train", "slides_call", "slides_summary"):
        assert any((finished_run / "logs" / rule).rglob("*.log")), rule


def test_slides_rerun_calls_not_training_when_call_setting_changes(finished_run: Path) -> None:
    plan = _changed(finished_run, {"slides/calls/min_certainty": 0.7})
    assert plan == {"slides_call": 3, "slides_summary": 1, **OVERVIEW_PLAN, "all": 1}
    assert _changed(finished_run, {"slides/report/gallery": 4}) == {
        "slides_summary": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_simsearch_outputs(finished_run: Path) -> None:
    from fishline.simsearch.annotations import check_annotations

    search = finished_run / "results/simsearch"
    sheet = pd.read_csv(search / "demo/sheet.tsv", sep="\t")
    assert len(sheet) == 6 and sorted(p.name for p in (search / "features").glob("*.npz")) == [
        f"{name}.npz" for name in sorted(sheet["image"])
    ]
    annotations = json.loads((search / "annotations/simulated.json").read_text())
    shapes = {name: (160, 160) for name in sheet["image"]}
    check_annotations(annotations, "simulated.json", shapes, ["nuclear", "cytoplasmic"])
    assert annotations["displayed"] == sheet["image"].tolist()[:2]
    assert [len(entry["prototypes"]) for entry in annotations["classes"]] == [2, 2]
    clean = pd.read_parquet(search / "patches/clean.parquet")
    noisy = pd.read_parquet(search / "patches/noisy.parquet")
    test_images = set(sheet["image"].tolist()[-2:])
    assert set(clean["image"]) <= set(annotations["displayed"])
    assert not set(noisy["image"]) & (test_images | set(annotations["displayed"]))
    for strategy in ("pos_neg_selflearn", "supervised"):
        found = pd.read_parquet(search / f"detect/{strategy}/detections.parquet")
        assert list(found.columns) == ["image", "x", "y", "class", "confidence"]
        assert set(found["image"]) <= test_images
        assert found["confidence"].between(0.6, 1).all()  # the default confidence
        metrics = json.loads((search / f"detect/{strategy}/metrics.json").read_text())
        assert sorted(metrics["classes"]) == ["cytoplasmic", "nuclear"]
        assert 0 <= metrics["mean_auc"] <= 1
        assert metrics["radius"] == pytest.approx(3 * 4.8)  # 3 x the search stride
    classes = pd.read_csv(search / "detect/supervised/segmentation/classes.tsv", sep="\t")
    assert classes["class"].tolist() == ["cytoplasmic", "nuclear"]  # values 1, 2
    for name in sorted(test_images):
        labels = tifffile.imread(search / f"detect/supervised/segmentation/{name}.tif")
        assert labels.shape == (160, 160) and set(np.unique(labels)) <= {0, 1, 2}
    table = pd.read_csv(search / "ablation/table.tsv", sep="\t")
    assert sorted(table["strategy"]) == ["pos", "pos_neg_selflearn", "supervised"]
    assert set(table.loc[table["strategy"] != "supervised", "setting"]) == {"P=2 N=1"}
    summary = pd.read_csv(search / "cells/summary.tsv", sep="\t")
    assert list(summary["prototypes"]) == [1] * 4 + [2] * 4 and set(summary["draws"]) == {2}
    assert set(summary["strategy"]) == {"examples", "self-learning"}
    assert set(summary["head"]) == {"prototypes", "linear"}
    assert summary["accuracy_mean"].between(0, 1).all()
    calls = pd.read_parquet(search / "cells/calls.parquet")
    assert calls["certainty"].between(0, 1).all() and set(calls["image"]) <= set(sheet["image"])
    assert set(calls["predicted_class"]) <= {"nuclear", "cytoplasmic", "absent"}
    assert set(calls["head"]) == {"prototypes", "linear"}
    for rule in (
        "ss_paint",
        "ss_features",
        "ss_train",
        "ss_detect",
        "ss_ablation_cell",
        "ss_cells",
    ):
        assert any((finished_run / "logs" / rule).rglob("*.log")), rule


def test_simsearch_rerun_detection_not_training_when_confidence_changes(
    finished_run: Path,
) -> None:
    plan = _changed(finished_run, {"simsearch/detect/confidence": 0.7})
    assert plan == {
        "ss_detect": 2,
        "ss_segment": 2,
        "ss_evaluate": 2,
        "ss_report": 1,
        "ss_ablation_cell": 1,
        "ss_ablation": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }


def test_simsearch_user_annotations_replace_the_simulated_user(finished_run: Path) -> None:
    mine = finished_run / "my_annotations.json"  # as saved by `fishline annotate`
    shutil.copy(finished_run / "results/simsearch/annotations/simulated.json", mine)
    config = yaml.safe_load(TINY.read_text())
    config["simsearch"]["annotations"] = str(mine)
    config["simsearch"]["ablation"]["enabled"] = False
    path = finished_run / "annotated.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert planned(snakemake(finished_run, "-n", config=path)) == {
        "ss_noisy": 1,
        "ss_train": 1,  # the supervised baseline does not use annotations
        "ss_detect": 2,  # per-class confidences come from the annotations
        "ss_segment": 2,
        "ss_evaluate": 2,
        "ss_annotation_report": 1,
        "ss_report": 1,
        **OVERVIEW_PLAN,
        "all": 1,
    }
    broken = json.loads(mine.read_text())
    broken["patch"] = {"width": 64, "height": 64}
    for entry in broken["classes"]:
        for box in entry["prototypes"]:
            box.update(width=64, height=64, x=0, y=0)
    mine.write_text(json.dumps(broken))
    settings = load_config(TINY)["simsearch"]  # schema defaults over the tiny values
    outputs = {
        key: str(finished_run / f"broken/{key}")
        for key in ("clean_stack", "clean_table", "noisy_stack", "noisy_table")
    }
    with pytest.raises(InputError, match=r"my_annotations.json \[patch\]: prototypes are 64 x 64"):
        annotated_patches(
            SheetImages(
                str(finished_run / "results/simsearch/demo/sheet.tsv"), {"displayed": 2, "test": 2}
            ),
            str(finished_run / "results/simsearch/features"),
            str(mine),
            settings["classes"],
            settings["noisy"],
            SearchSettings.from_config(settings["search"]),
            1,
            outputs,
        )
    assert not (finished_run / "broken").exists() or not any((finished_run / "broken").iterdir())
