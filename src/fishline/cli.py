"""The ``fishline`` command: validate configs and sheets, document the settings, paint data
without Snakemake, annotate SimSearch images in the browser."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fishline.config import load_config
from fishline.errors import InputError
from fishline.schema import default
from fishline.seeds import stage_seed
from fishline.sheets import check_sheet_images, read_sample_sheet


def _validate(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    print(f"{args.config}: valid ({len(config['fish']['paint']['splits'])} FISH splits)")


def _config_docs(args: argparse.Namespace) -> None:
    from fishline.config_docs import render_config_docs

    text = render_config_docs()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")


def _check_sheet(args: argparse.Namespace) -> None:
    table = read_sample_sheet(args.sheet, args.kind)
    opened = check_sheet_images(table, args.kind, args.sheet)
    print(f"{args.sheet}: valid, {len(table)} rows, {opened} image files opened and checked")


def _paint(args: argparse.Namespace) -> None:
    from fishline.paint import FishPaintSettings, paint_patch_set

    config = load_config(args.config)
    seed = stage_seed(config["seed"], "fish_paint", args.split)
    out = Path(args.out)
    frame = paint_patch_set(
        FishPaintSettings.from_config(config["fish"]["paint"]),
        args.split,
        seed,
        out / f"{args.split}.tif",
        out / f"{args.split}.parquet",
        threads=args.threads,
    )
    print(f"wrote {len(frame)} patches to {out / args.split}.tif/.parquet")


def _weights(text: str | None) -> list[float] | None:
    """Comma-separated numbers, or None."""
    if not text:
        return None
    try:
        return [float(value) for value in text.split(",")]
    except ValueError as error:
        raise SystemExit(f"--channel-weights: expected numbers like 1,3, got '{text}'") from error


def _annotate(args: argparse.Namespace) -> None:
    import logging

    import torch

    from fishline.simsearch.app import create_app, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    displayed: int | list[str] | None = None
    if args.displayed:
        names = args.displayed.split(",")
        displayed = int(names[0]) if names[0].isdigit() and len(names) == 1 else names
    app = create_app(
        args.sheet,
        args.out,
        displayed=displayed,
        channels=args.channels.split(",") if args.channels else None,
        backbone=args.backbone,
        weights=args.weights,
        model=args.model,
        detect_stride=args.detect_stride,
        channel_mode=args.channel_mode,
        channel_weights=_weights(args.channel_weights),
    )
    serve(app, port=args.port, browser=not args.no_browser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fishline`` console command."""
    parser = argparse.ArgumentParser(prog="fishline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="validate a workflow config file")
    validate.add_argument("config")
    validate.set_defaults(run=_validate)
    docs = commands.add_parser(
        "config-docs", help="write config/README.md (every setting) from the config schema"
    )
    docs.add_argument("--output", default="config/README.md", help="file to write; - = stdout")
    docs.set_defaults(run=_config_docs)
    sheet = commands.add_parser("check-sheet", help="validate a sample sheet")
    sheet.add_argument(
        "kind",
        choices=[
            "nuclei_sheet",
            "fields_sheet",
            "metaphase_sheet",
            "patch_sheet",
            "slide_sheet",
            "simsearch_sheet",
        ],
    )
    sheet.add_argument("sheet")
    sheet.set_defaults(run=_check_sheet)
    paint = commands.add_parser("paint", help="paint one FISH patch split (as rule fish_paint)")
    paint.add_argument("config")
    paint.add_argument("--split", default="train")
    paint.add_argument("--out", default="results/fish/synthetic")
    paint.add_argument("--threads", type=int, default=1)
    paint.set_defaults(run=_paint)
    annotate = commands.add_parser(
        "annotate", help="mark SimSearch prototypes, negatives and background in the browser"
    )
    annotate.add_argument("sheet", help="SimSearch image sheet (TSV)")
    annotate.add_argument(
        "--out", required=True, help="annotations JSON file that Save writes (resumed if present)"
    )
    annotate.add_argument(
        "--displayed",
        help="how many images to show (the first N; default "
        f"{default('simsearch.displayed')}), or their names",
    )
    annotate.add_argument("--channels", help="comma-separated channels to use (default: all)")
    annotate.add_argument(
        "--backbone", default=default("simsearch.search.backbone"), help="feature backbone"
    )
    annotate.add_argument("--weights", help="local state-dict file for the backbone")
    annotate.add_argument(
        "--channel-mode",
        default=default("simsearch.search.channels"),
        choices=["mixed", "separate"],
        help="channels through the backbone one by one (separate, the default: the channel "
        "that carries the signal counts, e.g. GFP beside DNA) or together (mixed)",
    )
    annotate.add_argument(
        "--channel-weights", help="separate mode: comma-separated weight per channel, e.g. 1,3"
    )
    annotate.add_argument(
        "--model", help="trained SimSearch model: show its detections, set class confidences"
    )
    annotate.add_argument(
        "--detect-stride", type=int, help="detection window stride in px (default: patch/4)"
    )
    annotate.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    annotate.add_argument("--no-browser", action="store_true", help="only print the URL")
    annotate.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    annotate.set_defaults(run=_annotate)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except InputError as error:
        print(f"fishline error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
