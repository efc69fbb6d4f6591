"""Config and sample-sheet validation: defaults, clear errors naming the key or row."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from fishline.config import load_config, read_yaml
from fishline.errors import InputError
from fishline.schema import validate
from fishline.seeds import stage_seed
from fishline.sheets import read_sample_sheet

ROOT = Path(__file__).resolve().parents[1]


def _flat(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_default_config_holds_only_departures_from_the_schema_defaults() -> None:
    """config/config.yaml sets only the demo's deliberate choices: every value it writes
    differs from the schema default (a repeated default would be a second place to edit)."""
    written = _flat(read_yaml(ROOT / "config" / "config.yaml"))
    defaults = _flat(validate({}, "config", "defaults"))
    assert written and set(written) <= set(defaults)
    assert {key for key in written if written[key] == defaults[key]} == set()


def test_paper_config_validates_and_scales_up() -> None:
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config = load_config(ROOT / "config" / "config.yaml", overrides=paper)
    sizes = {name: s["n"] for name, s in config["fish"]["paint"]["splits"].items()}
    assert sum(sizes[s] for s in ("train", "val", "test")) == 30000
    # the merge keeps the shifted split's realism overrides from config.yaml
    assert config["fish"]["paint"]["splits"]["shifted"]["realism"]["blur"] == {"sigma": [0.8, 1.6]}


def test_typo_names_key_and_suggests() -> None:
    with pytest.raises(InputError) as error:
        validate({"fish": {"paint": {"spot_sgima": [1, 2]}}}, "config", "my.yaml")
    message = str(error.value)
    assert message.startswith("my.yaml [fish.paint.spot_sgima]")
    assert "did you mean 'spot_sigma'" in message


def test_broken_config_file_names_file_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "c.yaml"
    broken.write_text("fish:\n  train:\n    epochs: 3\n   batch_size: [16,\n")
    with pytest.raises(InputError, match=r"c.yaml: not valid YAML: .*\(line 4, column 4\)$"):
        load_config(broken)
    broken.write_text("fish:\n\ttrain: {}\n")
    with pytest.raises(InputError, match=r"\(line 2, column 1\); indent with spaces, not tabs"):
        read_yaml(broken)
    with pytest.raises(InputError, match=r"missing.yaml: cannot read config file: No such file"):
        load_config(tmp_path / "missing.yaml")


def test_wrong_type_names_key() -> None:
    with pytest.raises(InputError, match=r"\[fish.paint.patch_size\]"):
        validate({"fish": {"paint": {"patch_size": "big"}}}, "config", "c.yaml")
    bad_condition = {"name": "x", "class": "normal", "target_spots": "two"}
    with pytest.raises(InputError, match=r"fish.paint.conditions\[0\].target_spots"):
        validate({"fish": {"paint": {"conditions": [bad_condition]}}}, "config", "c.yaml")


def test_split_overrides_stay_partial_and_merge_over_the_default_splits() -> None:
    splits = {"odd": {"n": 5, "realism": {"blur": {"sigma": 2}}}, "train": {"n": 7}, "ood": None}
    config = validate(
        {"fish": {"paint": {"splits": splits}, "umap": {"sets": ["train", "test"]}}},
        "config",
        "c.yaml",
    )
    splits = config["fish"]["paint"]["splits"]
    assert sorted(splits) == ["odd", "shifted", "test", "train", "val"]  # null drops ood
    assert splits["odd"] == {
        "n": 5, "realism": {"blur": {"sigma": 2}}, "stain": "fish", "source": "patches"
    }  # fmt: skip
    assert splits["train"]["n"] == 7 and splits["val"]["n"] == 300
    assert splits["shifted"]["realism"]["blur"] == {"sigma": [0.8, 1.6]}  # kept, not filled
    assert config["fish"]["paint"]["realism"]["blur"] == {"enabled": True, "sigma": [0.3, 1.0]}


def test_stage_seed_is_stable_and_distinct() -> None:
    assert stage_seed(42, "fish_paint", "train") == stage_seed(42, "fish_paint", "train")
    assert stage_seed(42, "fish_paint", "train") != stage_seed(42, "fish_paint", "val")
    assert stage_seed(42, "fish_paint", "train") != stage_seed(43, "fish_paint", "train")
    # same on every machine and in every process: SHA-256 of "seed:stage:keys"
    expected = int.from_bytes(hashlib.sha256(b"42:fish_paint:train").digest()[:4], "little")
    assert stage_seed(42, "fish_paint", "train") == expected == 1904327949


def _write_sheet(folder: Path, rows: list[str]) -> Path:
    sheet = folder / "nuclei.tsv"
    sheet.write_text("id\timage\tmask\n" + "\n".join(rows) + "\n")
    return sheet


def test_sheet_missing_file_names_row_and_column(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.ones((8, 8), np.uint8))
    sheet = _write_sheet(tmp_path, ["n1\ta.tif\ta.tif", "n2\ta.tif\tmissing.tif"])
    with pytest.raises(InputError) as error:
        read_sample_sheet(sheet, "nuclei_sheet")
    assert str(error.value).startswith(f"{sheet} [row 3, mask]: file not found")


def test_sheet_unknown_column_and_duplicates(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.ones((8, 8), np.uint8))
    sheet = tmp_path / "s.tsv"
    sheet.write_text("id\timage\tmask\tcolour\nn1\ta.tif\ta.tif\tred\n")
    with pytest.raises(InputError, match=r"row 2, colour\]: unknown key"):
        read_sample_sheet(sheet, "nuclei_sheet")
    sheet = _write_sheet(tmp_path, ["n1\ta.tif\ta.tif", "n1\ta.tif\ta.tif"])
    with pytest.raises(InputError, match="duplicate id 'n1'"):
        read_sample_sheet(sheet, "nuclei_sheet")


def test_sheet_resolves_paths_relative_to_sheet(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.ones((8, 8), np.uint8))
    table = read_sample_sheet(_write_sheet(tmp_path, ["n1\ta.tif\ta.tif"]), "nuclei_sheet")
    assert table.loc[0, "image"] == str(tmp_path / "a.tif")


@pytest.mark.parametrize("name", ["paper.yaml", "cpu_medium.yaml"])
def test_shipped_override_configs_validate(name: str) -> None:
    overrides = yaml.safe_load((ROOT / "config" / name).read_text())
    config = load_config(ROOT / "config" / "config.yaml", overrides=overrides)
    assert config["fish"]["paint"]["splits"]["train"]["n"] >= 4800


def test_every_override_config_validates_over_the_default() -> None:
    """Each file in config/ is a valid override of config/config.yaml, and the ones made for a
    purpose change what they say they change."""
    names = sorted(p.name for p in (ROOT / "config").glob("*.yaml") if p.name != "config.yaml")
    merged = {
        name: load_config(
            ROOT / "config" / "config.yaml",
            overrides=yaml.safe_load((ROOT / "config" / name).read_text()),
        )
        for name in names
    }
    assert len(merged) >= 10
    splits = merged["fish_pretrain.yaml"]["fish"]["paint"]["splits"]
    assert splits["train"]["source"] == "fields" and splits["patches"]["source"] == "patches"


def test_simsearch_ablation_config_turns_the_grid_on() -> None:
    overrides = yaml.safe_load((ROOT / "config" / "simsearch_ablation.yaml").read_text())
    ablation = load_config(ROOT / "config" / "config.yaml", overrides=overrides)["simsearch"][
        "ablation"
    ]
    assert ablation["enabled"] and ablation["prototypes"] == [5, 10]
    assert ablation["negatives"] == [0, 5] and len(ablation["strategies"]) == 4


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ({"chromosomes": {"paint": {"nuclei": {"diameter": [72, 42]}}}}, "nuclei.diameter"),
        ({"chromosomes": {"paint": {"count": [46, 44]}}}, "chromosomes.paint.count"),
        ({"fish": {"train": {"lr": [1.0e-3, 1.0e-5]}}}, "fish.train.lr"),
    ],
)
def test_reversed_range_names_its_key(edit: dict, key: str) -> None:
    with pytest.raises(InputError, match=rf"{key}\]: range .* is reversed"):
        validate(edit, "config", "mine.yaml")


def test_equal_bounds_are_a_valid_range() -> None:
    config = validate({"chromosomes": {"paint": {"count": [46, 46]}}}, "config", "mine.yaml")
    assert config["chromosomes"]["paint"]["count"] == [46, 46]


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        (
            {"slides": {"classifier": "resnet50"}},
            "slides.classifier",
            "neither an entry of fish.models nor a .pt file",
        ),
        ({"fish": {"umap": {"sets": ["train", "nope"]}}}, "fish.umap.sets", "['nope']"),
        ({"fish": {"evaluate": {"real": {"test": "x.tsv"}}}}, "fish.evaluate.real", "clash"),
        (
            {"fish": {"ablation": {"enabled": True, "model": "gone"}}},
            "fish.ablation.model",
            "'gone' is not in fish.models",
        ),
        (
            {
                "slides": {
                    "calls": {"rules": [{"class": "loss", "min_fraction": 0.2, "verdict": "x"}]}
                }
            },
            "slides.calls.rules",
            "class 'loss'",
        ),
        ({"chromosomes": {"real": {"train": "x.tsv"}}}, "chromosomes.real", "clash"),
        (
            {"chromosomes": {"self_training": {"enabled": True}}},
            "chromosomes.self_training",
            "chromosomes.real names no set",
        ),
        (
            {"chromosomes": {"real": {"lab": "x.tsv"}, "self_training": {"sets": ["lib"]}}},
            "chromosomes.self_training.sets",
            "names ['lib'], which are not in chromosomes.real ['lab']",
        ),
        (
            {"chromosomes": {"compare": {"data": ["real", "cyclegan"]}}},
            "chromosomes.compare.data",
            "cyclegan.enabled is false",
        ),
    ],
)
def test_cross_key_problems_are_refused_by_validate(
    tmp_path: Path, overrides: dict, key: str, problem: str
) -> None:
    """`fishline validate` makes the workflow's checks across keys, naming the key."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(overrides))
    with pytest.raises(InputError) as raised:
        load_config(path)
    assert raised.value.item == key and problem in raised.value.problem
    assert str(path) in str(raised.value)


def test_config_readme_is_generated_from_the_schema() -> None:
    from fishline.config_docs import render_config_docs

    text = render_config_docs()
    assert (ROOT / "config" / "README.md").read_text() == text, (
        "config/README.md is stale: run `make docs` (fishline config-docs)"
    )
    # every setting of the default config appears in a section's table
    assert "| `spot_sigma` |" in text and "`chromosomes.segment`" in text


def test_checks_into_named_sheets_are_refused_by_validate(tmp_path: Path) -> None:
    """A stage that needs truth masks or points refuses sheets without them, in `fishline
    validate` as in the workflow, naming the key."""
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((1, 8, 8), np.uint8))
    (tmp_path / "spreads.tsv").write_text("sample\timage\tdapi\nA1\ta.tif\t0\n")
    (tmp_path / "cells.tsv").write_text("image\tpath\tchannels\nA1\ta.tif\tdna\n")
    cases = [
        (
            {"chromosomes": {"real": {"mine": str(tmp_path / "spreads.tsv")},
                             "finetune_curve": {"enabled": True}}},
            "chromosomes.finetune_curve",
            "needs a real set with truth masks",
        ),
        (
            {"simsearch": {"sheet": str(tmp_path / "cells.tsv")}},
            "simsearch.annotations",
            "lack ground-truth points",
        ),
    ]  # fmt: skip
    for overrides, key, problem in cases:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(overrides))
        with pytest.raises(InputError) as raised:
            load_config(path)
        assert raised.value.item == key and problem in raised.value.problem
    # with annotations given, the same sheet is accepted; a disabled SimSearch needs none
    annotated = {"simsearch": {"sheet": str(tmp_path / "cells.tsv"), "annotations": "a.json"}}
    assert load_config(_written(tmp_path, annotated))["simsearch"]["annotations"] == "a.json"
    assert not load_config(_written(tmp_path, {"simsearch": {"enabled": False}}))["simsearch"][
        "enabled"
    ]


def _written(folder: Path, settings: dict) -> Path:
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_a_partial_block_keeps_the_defaults_of_its_place() -> None:
    """A block written in part merges over the default this place gives it, not the shared
    block's generic one: the metaphase painter's camera noise keeps its own read noise."""
    defaults = validate({}, "config", "defaults")["chromosomes"]["paint"]["realism"]
    partial = {"chromosomes": {"paint": {"realism": {"camera_noise": {"photons": [800, 900]}}}}}
    noise = validate(partial, "config", "c.yaml")["chromosomes"]["paint"]["realism"]
    assert noise["camera_noise"]["photons"] == [800, 900]
    assert noise["camera_noise"]["read_noise"] == defaults["camera_noise"]["read_noise"]
    assert (
        defaults["camera_noise"]["read_noise"]
        != validate({}, "config", "defaults")["fish"]["paint"]["realism"]["camera_noise"][
            "read_noise"
        ]
    )


def test_readme_layout_lists_every_module() -> None:
    """The README's layout section names every module of the package (a new module must be
    placed in it, so a newcomer finds it)."""
    text = (ROOT / "README.md").read_text()
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    package = ROOT / "src" / "fishline"
    modules = {
        path.relative_to(package).with_suffix("").as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    missing = []
    for module in sorted(modules):
        parts = module.split("/")
        line = next((row for row in layout.splitlines() if f"{parts[0]}/" in row), "")
        shared = next(row for row in layout.splitlines() if row.strip().startswith("(shared)"))
        words = set(re.findall(r"[\w/]+", line if len(parts) > 1 else shared))
        if "/".join(parts[1:] if len(parts) > 1 else parts) not in words:
            missing.append(module)
    assert not missing, f"modules missing from the README layout: {missing}"


def test_long_modules_say_why_at_the_top() -> None:
    """A module over 400 lines states at its top how long it is and why it stays one module
    (the layout goal: a newcomer reads a module in one sitting, or is told why not)."""
    package = ROOT / "src" / "fishline"
    unexplained = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        lines = len(text.splitlines())
        if lines <= 400:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        stated = [int(n) for n in re.findall(r"About (\d+) lines", doc)]
        if not stated or abs(stated[0] - lines) > 60:
            unexplained.append(f"{path.relative_to(package)} ({lines} lines; docstring: {stated})")
    assert not unexplained, f"long modules without an up-to-date reason: {unexplained}"


def test_long_or_wide_functions_say_why() -> None:
    """A function of more than 80 code lines (docstring excluded) or more than 8 parameters
    states why in its docstring, "(N parameters: ..." or "(Over 80 lines: ..." (for
    ``__init__``, in its class's docstring): the layout goal, new debt is named."""
    package = ROOT / "src" / "fishline"
    unexplained = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        owners = {
            id(item): node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for item in node.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = node.args
            count = len(arguments.posonlyargs + arguments.args + arguments.kwonlyargs)
            count -= bool(arguments.args) and arguments.args[0].arg in ("self", "cls")
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                lines -= first.end_lineno - first.lineno + 1
            if count <= 8 and lines <= 80:
                continue
            holder = owners.get(id(node)) if node.name == "__init__" else node
            doc = (ast.get_docstring(holder) if holder else None) or ""
            if not re.search(r"\((\d+\s+(constructor\s+)?parameters|Over\s+80\s+lines)[:,]", doc):
                unexplained.append(f"{path.relative_to(package)}:{node.name} ({count}, {lines})")
    assert not unexplained, f"functions over 8 parameters or 80 lines, no reason: {unexplained}"
