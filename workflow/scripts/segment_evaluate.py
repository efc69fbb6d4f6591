"""Snakemake glue for rule segment_evaluate."""

from fishline.chromosomes.figures import overlay_figure
from fishline.instances import evaluate_segmentation
from fishline.logging import log_to
from fishline.metaphase_sheet import sheet_path

with log_to(snakemake.log[0]):
    masks = sheet_path(snakemake.input[0], "masks.tsv")
    evaluate_segmentation(masks, snakemake.output.metrics, snakemake.output.per_image)
    overlay_figure(masks, snakemake.output.overlay, snakemake.params.overlays)
