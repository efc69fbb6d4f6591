"""Reading and writing the data contracts: patch sets (TIFF stack + Parquet), whole images.

All writers go through :func:`atomic_outputs`, so a failed or killed job leaves no
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pandas as pd
import tifffile

from fishline.errors import InputError


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[list[Path]]:
    """Yield temporary siblings of ``paths``; rename them all into place only on success."""
    finals = [Path(p) for p in paths]
    temps = [p.with_name(f".{p.name}.partial") for p in finals]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    for temp, final in zip(temps, finals, strict=True):
        os.replace(temp, final)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder of ``path``; it replaces ``path`` only on
    success (a failed or killed job leaves no partial folder under the final name)."""
    final = Path(path)
    temp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    temp.rename(final)


def encode_pages(stack: np.ndarray, compression: str) -> list[bytes] | np.ndarray:
    """Split an N x C x H x W stack into H x W TIFF pages, compressed here when asked.

    Compressing in the worker that painted the images, instead of in the single writer,
    is what lets painting scale with cores.
    """
    pages = stack.reshape(-1, *stack.shape[-2:])
    if compression == "none":
        return pages
    if compression == "zstd":  # level 1: 2x faster than the default, same ratio here
        return [imagecodecs.zstd_encode(page.tobytes(), level=1) for page in pages]
    return [imagecodecs.zlib_encode(page.tobytes()) for page in pages]


def write_stack(
    path: str | Path,
    pages: Iterable[np.ndarray | bytes],
    shape: Sequence[int],
    dtype: np.dtype | type,
    channel_names: Sequence[str],
    compression: str | None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Stream an N x C x H x W stack to a TIFF, one H x W page at a time (memory flat in N).

    ``pages`` are arrays, or bytes already compressed with ``compression`` by
    :func:`encode_pages` (one strip per page).
    """
    meta = {"axes": "QCYX", "channel_names": list(channel_names), **(metadata or {})}
    if shape[0] == 0:  # an empty set is a valid result (e.g. no chromosome was found)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "zero-size array" notice
            tifffile.imwrite(path, np.zeros(shape, dtype), photometric="minisblack", metadata=meta)
        return
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            data=iter(pages),
            shape=tuple(shape),
            dtype=np.dtype(dtype),
            photometric="minisblack",
            compression=None if compression == "none" else compression,
            rowsperstrip=shape[-2],
            metadata=meta,
        )


def write_unit_stack(
    path: str | Path, images: np.ndarray, channel_names: Sequence[str], target: str
) -> None:
    """Write N x C x H x W float images in [0, 1] (cell crops) as a 16-bit zlib stack whose
    full scale 65535 is 1: the form of slide-call crops, crop sets and real patch sets."""
    pixels = np.rint(np.clip(images, 0, 1) * 65535).astype(np.uint16)
    write_stack(
        path, encode_pages(pixels, "zlib"), pixels.shape, np.uint16, channel_names, "zlib",
        {"target": target, "bit_depth": 16},
    )  # fmt: skip


def read_stack(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a stack written by :func:`write_stack`; returns (N x C x H x W array, metadata)."""
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            meta = dict(tif.shaped_metadata[0]) if tif.shaped_metadata else {}
    except Exception as error:  # tifffile raises many types for corrupt input
        raise InputError(str(path), f"cannot read TIFF stack ({error})") from error
    shape = meta.get("shape")
    if shape is not None:
        data = data.reshape(shape)
    return data, meta


def read_patch_set(stack: str | Path, table: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a patch set and check that its table indexes the stack."""
    images, _ = read_stack(stack)
    frame = pd.read_parquet(table)
    if len(frame) != len(images) or not np.array_equal(frame["index"], np.arange(len(images))):
        raise InputError(str(table), f"table rows do not index the {len(images)} stack images")
    return images, frame


def write_image(
    path: str | Path, image: np.ndarray, channel_names: Sequence[str] | None = None
) -> None:
    """Write one whole image (channel axis first) or label mask as a compressed TIFF."""
    metadata = {"axes": "CYX" if image.ndim == 3 else "YX"}
    if channel_names is not None:
        metadata["channel_names"] = list(channel_names)
    tifffile.imwrite(path, image, photometric="minisblack", compression="zlib", metadata=metadata)
