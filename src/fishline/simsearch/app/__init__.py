"""Browser UI for SimSearch annotation (``fishline annotate``): server and static pages."""

from fishline.simsearch.app.server import create_app, serve

__all__ = ["create_app", "serve"]
