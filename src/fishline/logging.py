"""Route a job's log records, warnings and errors to its Snakemake log file."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from fishline.errors import InputError

LOGGER_NAME = "fishline"


def get_logger(name: str = "") -> logging.Logger:
    """Logger under the package namespace (``fishline.<name>``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


KEPT_ATTEMPTS = 5
LOG_INTERVAL = 30.0  # seconds between progress lines in a log file


class _Bar(tqdm):
    """tqdm whose postfix (e.g. the running loss) waits for the next scheduled redraw: tqdm's
    default forces one per call, i.e. one log line per training step."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = False, **values: Any) -> None:
        super().set_postfix(ordered_dict, refresh=refresh, **values)


def progress_bar(iterable: Iterable[Any] | None = None, **options: Any) -> tqdm:
    """A tqdm progress bar that also reads well in a job log: on a terminal it redraws in
    place; written to a log (stderr redirected by ``log_to``) it adds one line at most every
    ``LOG_INTERVAL`` seconds, plus the final one."""
    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_INTERVAL)
    return _Bar(iterable, **options)


def rounded(values: dict[str, Any]) -> str:
    """``{'loss': 5.141215430365669, 'lr': 0.001}`` -> ``loss 5.141, lr 0.001`` for log lines."""
    return ", ".join(
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in values.items()
    )


class _Lines(io.TextIOBase):
    """A job's stderr as log lines: each carriage-return redraw of a progress bar becomes a
    line of its own instead of frames joined by ``\r``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]+", text):
            if line.strip():
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _keep_attempt(path: Path) -> None:
    """Hard-link ``path`` into ``attempts/`` beside it, so what an attempt wrote survives
    Snakemake deleting the log before a rerun (a killed or failed job's log stays readable);
    the newest ``KEPT_ATTEMPTS`` per log are kept. Filesystems without hard links keep none."""
    folder = path.parent / "attempts"
    folder.mkdir(exist_ok=True)
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns() % 10**9:09d}"
    try:
        os.link(path, folder / f"{path.stem}.{stamp}{path.suffix}")
    except OSError:
        return
    earlier = sorted(folder.glob(f"{path.stem}.*{path.suffix}"), key=os.path.getmtime)
    for old in earlier[:-KEPT_ATTEMPTS]:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def log_to(path: str | Path) -> Iterator[logging.Logger]:
    """Send fishline logs, warnings and stderr (progress bars) to ``path`` for the block.

    An :class:`InputError` is written as one clear line (to the log and to the console)
    and re-raised as ``SystemExit(1)``, so the user sees the message, not a traceback.
    Each attempt's log is also kept under ``attempts/`` beside it (``_keep_attempt``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = get_logger()
    path.unlink(missing_ok=True)  # a new file: the kept link of the last attempt stays whole
    with path.open("w") as stream:
        _keep_attempt(path)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logging.captureWarnings(True)
        console = sys.__stderr__
        try:
            with contextlib.redirect_stderr(_Lines(stream)), warnings.catch_warnings():
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
