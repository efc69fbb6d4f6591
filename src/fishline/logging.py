"""Route a job's log records, warnings and errors to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

from fishline.errors import InputError

LOGGER_NAME = "fishline"


def get_logger(name: str = "") -> logging.Logger:
    """Logger under the package namespace (``fishline.<name>``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


@contextlib.contextmanager
def log_to(path: str | Path) -> Iterator[logging.Logger]:
    """Send fishline logs, warnings and stderr (progress bars) to ``path`` for the block.

    An :class:`InputError` is written as one clear line (to the log and to the console)
    and re-raised as ``SystemExit(1)``, so the user sees the message, not a traceback.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = get_logger()
    with path.open("w") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logging.captureWarnings(True)
        console = sys.__stderr__
        try:
            with contextlib.redirect_stderr(stream), warnings.catch_warnings():
                warnings.simplefilter("default")
                yield logger
        except InputError as error:
            logger.error("%s", error)
            print(f"fishline error: {error}", file=console)
            raise SystemExit(1) from error
        except Exception:
            stream.write(traceback.format_exc())
            raise
        finally:
            logger.removeHandler(handler)
            logging.captureWarnings(False)
