"""fishline: label-efficient aberration detection in FISH microscopy."""

__version__ = "0.1.0"
