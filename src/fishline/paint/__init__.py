"""Synthetic FISH microscopy: procedural nuclei, FISH signals, optics and noise.

Public entry points: :func:`paint_patch_set` (single-nucleus patch sets, the FISHPainter
task) and :func:`paint_fields` (multi-nucleus fields with instance masks), both painting
what a :class:`FishPaintSettings` says (config block ``fish.paint``).
"""

from fishline.paint.fields import paint_fields
from fishline.paint.fish import paint_patch_set, render_patches
from fishline.paint.fish_settings import FishPaintSettings

__all__ = ["FishPaintSettings", "paint_fields", "paint_patch_set", "render_patches"]
