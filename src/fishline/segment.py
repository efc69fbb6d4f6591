"""Instance segmentation with Cellpose 3.1: train from scratch on painted (or the user's) masks
and segment the images of a sample sheet (scores: fishline.instances).

Nothing is downloaded: a model is trained here, read from a local file, or taken by name
from Cellpose's local model folder when it is already there.

About 750 lines, half of them the numpydoc of its public API: Cellpose's glue for both
tracks (typed settings, model files, training, inference, scoring a sheet) in one place.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fishline.chromosomes.colours import CONTACT_PER_DIAMETER, merge_by_colour
from fishline.errors import InputError
from fishline.instances import (
    half_maximum_objects,
    instance_scores,
    object_diameter,
    threshold_components,
)
from fishline.io import atomic_outputs, write_image
from fishline.jit import import_cached
from fishline.logging import get_logger, progress_bar
from fishline.metaphase_sheet import iter_sheet, load_row, read_sheet
from fishline.nets.cellpose_ensemble import DEFAULT_WIDTH, CellposeEnsemble
from fishline.paint.draws import Range, bounds
from fishline.schema import default, typed_settings
from fishline.train.loop import setup_device

log = get_logger("segment")
TRACKS = ("chromosomes", "slides")  # the config blocks <track>.segment and <track>.cellpose


@dataclass(frozen=True)
class SegmentSettings:
    """Cellpose inference settings (config blocks ``chromosomes.segment`` and
    ``slides.segment``; their defaults differ, so take a track's with :meth:`of_track`).

    Parameters
    ----------
    flow_threshold : float
        Cellpose's flow error threshold: masks whose flows disagree more are dropped.
    cellprob_threshold : float
        Cell-probability logit above which a pixel belongs to a mask.
    min_size : int
        Masks smaller than this (px) are dropped.
    tile : int
        Side of Cellpose's inference tiles, px.
    diameter_source : str
        ``estimate`` (per image) or ``model`` (the training objects' size).
    colour_merge : float or None
        M-FISH spreads: largest cosine distance of the fluor signatures of two bordering
        masks that merge (:func:`colour_merged`); None or 0 (and images without fluor
        channels): no merging. Chromosomes only.

    Examples
    --------
    >>> settings = SegmentSettings.of_track("slides")  # cellprob 0, tiles of 224 px
    >>> labels = segment_dapi(model, dapi, settings, diameter=26.0)
    """

    flow_threshold: float
    cellprob_threshold: float
    min_size: int
    tile: int
    diameter_source: str
    colour_merge: float | None = None

    @classmethod
    def of_track(cls, track: str) -> SegmentSettings:
        """The schema's defaults of ``<track>.segment`` (``chromosomes`` or ``slides``)."""
        return cls.from_config(default(f"{_track(track)}.segment"))

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> SegmentSettings:
        """The settings of a ``<track>.segment`` block (every key given)."""
        return typed_settings(cls, block, "segment settings")


@dataclass(frozen=True)
class CellposeTrainSettings:
    """Cellpose training settings (config blocks ``chromosomes.cellpose`` and
    ``slides.cellpose``, whose defaults differ: :meth:`of_track`); what each means:
    config/README.md. ``pretrained`` names the model to fine-tune (None: from scratch; see
    :func:`resolve_pretrained`), ``diameter`` the object size the network is trained at (px),
    ``tile`` its training crop (px), ``gamma_copies`` / ``gamma`` the copies of each image
    at a random intensity gamma (:func:`with_gamma_copies`), ``width`` and ``members`` the
    channel widths and number of networks trained from scratch (:class:`CellposeEnsemble`)."""

    pretrained: str | None
    diameter: float
    epochs: int
    batch_size: int
    images_per_epoch: int
    learning_rate: float
    weight_decay: float
    tile: int
    gamma_copies: int
    gamma: float | tuple[float, float]
    width: tuple[int, ...]
    members: int

    @classmethod
    def of_track(cls, track: str) -> CellposeTrainSettings:
        """The schema's defaults of ``<track>.cellpose`` (``chromosomes`` or ``slides``)."""
        return cls.from_config(default(f"{_track(track)}.cellpose"))

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> CellposeTrainSettings:
        """The settings of a ``<track>.cellpose`` block; its keys for the workflow (the
        training sheet, the painted fields, the shipped model) are left to it."""
        return typed_settings(cls, block, "Cellpose settings", ignore=("sheet", "model", "fields"))


def _track(track: str) -> str:
    if track not in TRACKS:
        raise InputError("track", f"unknown track '{track}'; known: {list(TRACKS)}")
    return track


def named_model_file(name: str) -> Path:
    """The local file of a named Cellpose model, or a clear error (nothing is downloaded).

    Parameters
    ----------
    name : str
        A model name in Cellpose's local model folder (``cyto``, ``cyto2`` and ``nuclei`` are
        the files ``<name>torch_0``; any other name is the file name itself).

    Returns
    -------
    pathlib.Path
        The model file.

    Raises
    ------
    InputError
        If the file is not in the folder (``item`` is ``pretrained``).
    """
    models = import_cached("cellpose.models")

    basename = f"{name}torch_0" if name in {"cyto", "cyto2", "nuclei"} else name
    path = models.MODEL_DIR / basename
    if not path.is_file():
        raise InputError(
            "config",
            f"Cellpose model '{name}' is not present locally ({path}); fishline never downloads "
            "weights: copy the file there (or set CELLPOSE_LOCAL_MODELS_PATH), give a file path, "
            "or leave pretrained empty to train from scratch",
            item="pretrained",
        )
    return path


def resolve_pretrained(pretrained: str | None) -> Path | None:
    """A pretrained setting as a local file: a path as given, a name from Cellpose's folder.

    Parameters
    ----------
    pretrained : str or None
        A file path (anything with a suffix or a '/') or a Cellpose model name
        (:func:`named_model_file`); None or "" to train from scratch.

    Returns
    -------
    pathlib.Path or None
        The model file; None for from scratch.

    Raises
    ------
    InputError
        If the path is not a file or the named model is not present locally.
    """
    if not pretrained:
        return None
    path = Path(pretrained)
    if path.suffix or "/" in pretrained:
        if not path.is_file():
            raise InputError(str(path), "pretrained Cellpose model file not found", "pretrained")
        return path
    return named_model_file(pretrained)


def is_fishline_cellpose(path: Path) -> bool:
    """Whether ``path`` is a fishline model file of kind ``cellpose`` (such as the shipped
    chromosome model) rather than a weights file in Cellpose's own format.

    Parameters
    ----------
    path : pathlib.Path
        A model or weights file.

    Returns
    -------
    bool
        True when it loads (weights only) as a dict with ``kind`` ``"cellpose"``; False for
        anything else, unreadable files included.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # Cellpose's own files and foreign formats: not ours
        return False
    return isinstance(payload, dict) and payload.get("kind") == "cellpose"


def new_model(
    device: torch.device,
    diameter: float,
    pretrained: Path | None = None,
    width: tuple[int, ...] | list[int] = DEFAULT_WIDTH,
    members: int = 1,
) -> Any:
    """A Cellpose network: fresh (random init, no download), from a fishline model file
    (its own object diameter, width and members are kept) or from a weights file in
    Cellpose's format.

    Parameters
    ----------
    device : torch.device
        Where the network runs (a CUDA device turns on Cellpose's GPU mode).
    diameter : float
        Mean object diameter the network is built for (Cellpose's ``diam_mean``), px;
        unused for a fishline model file.
    pretrained : pathlib.Path or None, optional
        A fishline model file, a Cellpose weights file, or None (default) for random init.
    width : sequence of int, optional
        Channel widths of a fresh network's four levels; default Cellpose's (32, 64, 128, 256).
    members : int, optional
        Fresh networks run as one (:class:`CellposeEnsemble`); default 1.

    Returns
    -------
    Any
        A ``cellpose.models.CellposeModel`` (its ``net`` a :class:`CellposeEnsemble` when
        ``members`` > 1 or ``width`` is not the default).
    """
    models = import_cached("cellpose.models")

    if pretrained is not None and is_fishline_cellpose(pretrained):
        return load_cellpose(pretrained, device)[0]
    model = models.CellposeModel(
        gpu=device.type == "cuda",
        device=device,
        pretrained_model=str(pretrained) if pretrained else False,
        model_type=None,
        diam_mean=diameter,
    )
    if pretrained is None and (members > 1 or tuple(width) != DEFAULT_WIDTH):
        model.net = CellposeEnsemble(members, width, diameter).to(device)
    return model


def _training_pairs(sheet: str | Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """DAPI images and truth instance masks of every row that has a mask."""
    images, masks, names = [], [], []
    for item in iter_sheet(sheet):
        if item.truth is None:
            raise InputError(str(sheet), "training needs a mask for every row", item=item.sample)
        images.append(item.dapi.astype(np.float32))
        masks.append(item.truth_pieces)
        names.append(item.sample)
    return images, masks, names


def with_gamma_copies(
    images: list[np.ndarray],
    masks: list[np.ndarray],
    copies: int,
    gamma: Range,
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The training images and masks followed by ``copies`` copies of each image with a random
    intensity gamma, each beside its unchanged mask.

    Annotators draw the edge of a chromosome or nucleus at different fractions of its
    brightness (real dev metaphases: 0.28-0.79; painted: 0.64-0.70), so a network trained on
    one painter learns one edge brightness; a copy under gamma g puts the same mask edge at
    another relative brightness.

    Parameters
    ----------
    images : list of numpy.ndarray
        (H, W) training images, any scale.
    masks : list of numpy.ndarray
        Their instance masks.
    copies : int
        Copies per image.
    gamma : float or sequence of float
        [low, high] range of the gamma, drawn log-uniformly per copy (one number: that gamma).
    seed : int
        Random seed of the draws.

    Returns
    -------
    images, masks : list of numpy.ndarray
        The originals, then the copies (float32, the image scaled to 0 at its 1st and 1 at its
        99.9th percentile, clipped below at 0, raised to the gamma) image by image.
    """
    rng = np.random.default_rng(seed)
    low, high = np.log(bounds(gamma))
    extra_images, extra_masks = [], []
    for image, mask in zip(images, masks, strict=True):
        floor, top = np.percentile(image, [1, 99.9])
        unit = np.clip((image - floor) / max(top - floor, 1e-6), 0, None)
        for _ in range(copies):
            extra_images.append((unit ** np.exp(rng.uniform(low, high))).astype(np.float32))
            extra_masks.append(mask)
    return images + extra_images, masks + extra_masks


def train_cellpose(
    train_sheet: str | Path,
    val_sheet: str | Path | None,
    settings: CellposeTrainSettings,
    seed: int,
    threads: int,
    device: str,
    model_out: str | Path,
    history_out: str | Path,
    object_name: str = "chromosome",
) -> pd.DataFrame:
    """Train Cellpose on the DAPI channel and the truth masks of ``train_sheet``.
    (9 parameters, over 80 lines: Cellpose's training call wrapped with the data (gamma
    copies, validation), progress, seeding and the weights file fishline writes.)

    From scratch unless ``settings.pretrained`` names a local model to fine-tune. The
    result is a fishline model file (kind ``cellpose``) so one loader serves every model.

    Parameters
    ----------
    train_sheet : str or pathlib.Path
        Metaphase sheet of the training images; every row needs a truth mask.
    val_sheet : str or pathlib.Path or None
        Metaphase sheet of validation images (every row with a mask), or None.
    settings : CellposeTrainSettings
        The training settings (e.g. ``CellposeTrainSettings.of_track("chromosomes")``).
    seed : int
        Random seed.
    threads : int
        CPU threads for torch.
    device : str
        ``cpu``, ``cuda`` or ``auto`` (CUDA when present), as :func:`setup_device` takes.
    model_out : str or pathlib.Path
        The fishline model file written; its metadata hold the training objects' diameter
        (``object_diameter``, px), the seconds taken and the machine.
    history_out : str or pathlib.Path
        Parquet file of the returned loss history.
    object_name : str, optional
        The model's one class name; default ``"chromosome"``.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``train_loss`` and ``val_loss`` (NaN on the
        epochs Cellpose does not score: it scores at epoch 5 and every 10th, and only with
        ``val_sheet``); for several networks their mean.

    Raises
    ------
    InputError
        If a training or validation row has no mask, the pretrained model is not found
        locally, or ``device`` is ``cuda`` without a usable GPU.
    """
    from fishline import models as model_files

    train = import_cached("cellpose.train")

    chosen = setup_device(device, threads, seed)
    torch.use_deterministic_algorithms(False)  # Cellpose's flows use non-deterministic ops on CUDA
    pretrained = resolve_pretrained(settings.pretrained)
    images, masks, names = _training_pairs(train_sheet)
    if settings.gamma_copies:
        images, masks = with_gamma_copies(
            images, masks, settings.gamma_copies, settings.gamma, seed
        )
        log.info(
            "%d gamma copies of each image: %d training images",
            settings.gamma_copies,
            len(images),
        )
    val_images, val_masks = (None, None)
    if val_sheet is not None:
        val_images, val_masks, _ = _training_pairs(val_sheet)
    net = new_model(chosen, settings.diameter, pretrained, settings.width, settings.members)
    members = list(net.net.members) if isinstance(net.net, CellposeEnsemble) else [net.net]
    log.info(
        "training Cellpose (%d network%s) on %d images (%s), %d epochs, device %s",
        len(members),
        "s" if len(members) > 1 else "",
        len(images),
        "fine-tuning " + str(pretrained) if pretrained else "from scratch",
        settings.epochs,
        chosen,
    )
    orders = member_images(len(images), len(members), pretrained is None, seed)
    if min(len(order) for order in orders) == 0:
        raise InputError(
            str(train_sheet),
            f"{len(images)} training images cannot give each of {len(members)} networks its own",
            item="members",
        )
    started = time.perf_counter()
    histories = []
    for index, (member, order) in enumerate(zip(members, orders, strict=True)):
        if len(members) > 1:
            log.info("network %d of %d", index + 1, len(members))
        with tempfile.TemporaryDirectory() as folder, _cellpose_progress():
            _, train_losses, val_losses = train.train_seg(
                member,
                train_data=[images[i] for i in order],
                train_labels=[masks[i] for i in order],
                test_data=val_images,
                test_labels=val_masks,
                channels=[0, 0],
                batch_size=settings.batch_size,
                learning_rate=settings.learning_rate,
                weight_decay=settings.weight_decay,
                n_epochs=settings.epochs,
                nimg_per_epoch=settings.images_per_epoch,
                bsize=settings.tile,
                rescale=True,
                min_train_masks=1,
                save_path=folder,
                save_every=10**9,
                model_name="cellpose",
            )
        histories.append((train_losses, val_losses))
    seconds = time.perf_counter() - started
    # Cellpose scores the validation images at epoch 5 and every 10th epoch only (0 elsewhere).
    train_losses = np.mean([losses for losses, _ in histories], axis=0)
    val_losses = np.mean([losses for _, losses in histories], axis=0)
    history = pd.DataFrame(
        {
            "epoch": np.arange(1, len(train_losses) + 1),
            "train_loss": train_losses,
            "val_loss": np.where(val_losses > 0, val_losses, np.nan),
        }
    )
    spec: dict[str, Any] = {"diameter": float(net.net.diam_mean.item())}
    if isinstance(net.net, CellposeEnsemble):
        spec |= {"members": len(members), "width": [int(w) for w in members[0].nbase[1:]]}
    metadata = {
        "train_images": names,
        "epochs": settings.epochs,
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(settings.epochs, 1),
        "pretrained": str(pretrained) if pretrained else None,
        "object_diameter": float(net.net.diam_labels.item()),
        "device": str(chosen),
        "machine": model_files.machine(),
    }
    with atomic_outputs(history_out) as (temp,):
        history.to_parquet(temp, index=False)
    model_files.save(model_out, net.net, "cellpose", spec, [object_name], metadata)
    log.info("trained in %.1f s (%.2f s/epoch)", seconds, metadata["seconds_per_epoch"])
    return history


def member_images(count: int, members: int, from_scratch: bool, seed: int) -> list[np.ndarray]:
    """Which training images each of ``members`` networks trains on, in the order given.

    From scratch, image ``i`` goes to network ``i mod members``: networks that learn from
    different painted spreads err in different places, which is what averaging them needs
    (on the real dev spreads four narrow networks from four painted sets averaged 0.836
    against 0.824 from one set; docs/segmentation_log.md). A fine-tuning gives every network
    every image (a few real masks are too few to share out), the first in the sheet's order,
    each further one in its own seeded order, since Cellpose draws its tiles by epoch number
    and not by fishline's seed.
    """
    if from_scratch and members > 1:
        return [np.arange(index, count, members) for index in range(members)]
    return [np.arange(count)] + [
        np.random.default_rng([seed, index]).permutation(count) for index in range(1, members)
    ]


@contextlib.contextmanager
def _cellpose_progress() -> Iterator[None]:
    """Route Cellpose's own training lines (loss and time every 10 epochs) to the job log."""
    logger = logging.getLogger("cellpose.train")
    handlers = list(get_logger().handlers)
    level = logger.level
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.setLevel(level)


def load_cellpose(path: str | Path, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """A ready-to-run Cellpose model from a fishline model file.

    Parameters
    ----------
    path : str or pathlib.Path
        A fishline model file of kind ``cellpose`` (:func:`train_cellpose`).
    device : torch.device
        Where the network runs.

    Returns
    -------
    model : Any
        A ``cellpose.models.CellposeModel`` in eval mode on ``device``.
    info : dict of str to Any
        The file's other fields: ``kind``, ``spec`` (``diameter``, px), ``class_names`` and
        ``metadata`` (e.g. ``object_diameter``, px).

    Raises
    ------
    InputError
        If the file cannot be read or is not of kind ``cellpose``.
    """
    from fishline import models as model_files

    net, info = model_files.load(path)
    if info["kind"] != "cellpose":
        raise InputError(str(path), f"expected a Cellpose model, got kind '{info['kind']}'")
    model = new_model(device, info["spec"]["diameter"])
    if isinstance(net, CellposeEnsemble):
        model.net = net
    else:
        model.net.load_state_dict(net.state_dict())
    model.net.to(device)
    model.net.eval()
    return model, info


def estimate_diameter(dapi: np.ndarray) -> float:
    """Object diameter (Cellpose's definition) of the DAPI image's objects, each cut at half
    its own brightness (:func:`half_maximum_objects`).

    Used when a sheet gives no scale: the median over objects is robust to a few touching
    chromosomes, and the per-object threshold to brightness varying between chromosomes, so
    the network sees objects at the size it was trained on.

    Parameters
    ----------
    dapi : numpy.ndarray
        (H, W) DAPI image.

    Returns
    -------
    float
        Median equivalent-disc diameter of the objects of at least 15 px area, px; 0.0 when
        there are none.
    """
    return object_diameter(half_maximum_objects(dapi), min_area=15)


def segment_dapi(
    model: Any, dapi: np.ndarray, settings: SegmentSettings, diameter: float
) -> np.ndarray:
    """Instance labels (int32) of one DAPI image.

    Parameters
    ----------
    model : Any
        A ``cellpose.models.CellposeModel``, e.g. from :func:`load_cellpose`.
    dapi : numpy.ndarray
        (H, W) DAPI image, any numeric dtype (run as float32).
    settings : SegmentSettings
        Cellpose's inference settings (``diameter_source`` is not used here).
    diameter : float
        Object diameter to segment at, px (Cellpose rescales the image to its training size).

    Returns
    -------
    numpy.ndarray
        (H, W) int32 instance labels, 0 = background.
    """
    masks, _, _ = model.eval(
        dapi.astype(np.float32),
        channels=[0, 0],
        diameter=diameter,
        flow_threshold=settings.flow_threshold,
        cellprob_threshold=settings.cellprob_threshold,
        min_size=settings.min_size,
        bsize=settings.tile,
    )
    return masks.astype(np.int32)


def segment_spread(
    model: Any,
    dapi: np.ndarray,
    settings: SegmentSettings,
    trained_diameter: float,
    estimate: Callable[[np.ndarray], float] = estimate_diameter,
    colours: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """Instance labels of one image at the object size ``settings.diameter_source`` says
    (``model``: the training objects' size; ``estimate``: per image, by ``estimate``), with
    that diameter and the segmentation seconds; an M-FISH image's touching masks of one fluor
    code merged (:func:`colour_merged`).

    Parameters
    ----------
    model, dapi : Any, numpy.ndarray
        As in :func:`segment_dapi`.
    settings : SegmentSettings
        Cellpose's inference settings, ``diameter_source`` included.
    trained_diameter : float
        The training objects' diameter, px; also the fall-back when the estimate is 0.
    estimate : callable, optional
        (H, W) DAPI image -> object diameter, px; default :func:`estimate_diameter`.
    colours : numpy.ndarray or None, optional
        (C, H, W) fluor channels of an M-FISH image (:attr:`Metaphase.colours`); None
        (default) segments DAPI alone.

    Returns
    -------
    labels : numpy.ndarray
        (H, W) int32 instance labels, 0 = background.
    diameter : float
        The diameter segmented at, px.
    seconds : float
        Wall-clock seconds of the segmentation and colour merge (estimate excluded).
    """
    diameter = trained_diameter
    if settings.diameter_source == "estimate":
        diameter = estimate(dapi) or trained_diameter
    started = time.perf_counter()
    labels = segment_dapi(model, dapi, settings, diameter)
    labels = colour_merged(labels, colours, settings, diameter)
    return labels, diameter, time.perf_counter() - started


def colour_merged(
    labels: np.ndarray, colours: np.ndarray | None, settings: SegmentSettings, diameter: float
) -> np.ndarray:
    """``labels`` with bordering masks of one M-FISH fluor code merged
    (:func:`fishline.chromosomes.colours.merge_by_colour` at ``settings.colour_merge``, the
    contact scaled by the object ``diameter`` in px), or unchanged when there are no fluor
    channels or the merge is off."""
    if colours is None or not settings.colour_merge:
        return labels
    contact = CONTACT_PER_DIAMETER * diameter
    return merge_by_colour(labels, colours, settings.colour_merge, contact)


def segment_sheet(
    model_path: str | Path,
    sheet: str | Path,
    settings: SegmentSettings,
    outdir: str | Path,
    masks_sheet: str | Path,
    threads: int,
    device: str,
    samples: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Segment every image of ``sheet`` (or only the rows of ``samples``); write one label
    TIFF per sample and a masks sheet.

    The masks sheet repeats the sample's columns with ``pred`` = the predicted labels, so
    cropping and evaluation read one file. Object scale: ``settings.diameter_source`` is
    ``model`` (the training objects' size) or ``estimate`` (per image, :func:`estimate_diameter`).

    Parameters
    ----------
    model_path : str or pathlib.Path
        A fishline Cellpose model file (:func:`train_cellpose`).
    sheet : str or pathlib.Path
        Metaphase sheet of the images.
    settings : SegmentSettings
        As :func:`segment_spread` takes.
    outdir : str or pathlib.Path
        Folder for ``<sample>.pred.tif`` (uint16 labels; uint32 past 65535 instances).
    masks_sheet : str or pathlib.Path
        The TSV masks sheet written.
    threads : int
        CPU threads for torch.
    device : str
        ``cpu``, ``cuda`` or ``auto``, as :func:`setup_device` takes.
    samples : Sequence of str or None, optional
        Samples to segment; None (default) for every row.

    Returns
    -------
    pandas.DataFrame
        The masks sheet: the row's filled columns plus ``pred`` (absolute path of the label
        TIFF), ``instances`` (count), ``diameter`` (px) and ``seconds``.

    Raises
    ------
    InputError
        If ``samples`` names a sample without a row, or the model file is not a Cellpose
        model.
    """
    table = read_sheet(sheet)
    if samples is not None:
        missing = sorted(set(samples) - set(table["sample"]))
        if missing:
            raise InputError(str(sheet), f"no row for sample(s) {', '.join(missing)}")
        table = table[table["sample"].isin(samples)]
    rows = table.to_dict("records")
    chosen = setup_device(device, threads, 0)
    model, info = load_cellpose(model_path, chosen)
    trained = info["metadata"]["object_diameter"]
    outdir = Path(outdir)
    paths = [outdir / f"{row['sample']}.pred.tif" for row in rows]
    records = []
    with atomic_outputs(*paths, masks_sheet) as temps:
        for row, temp, final in zip(
            progress_bar(rows, desc="segment", unit="image"), temps, paths, strict=False
        ):
            item = load_row(row, sheet, with_truth=False)  # scored later, by segment_evaluate
            labels, diameter, seconds = segment_spread(
                model, item.dapi, settings, trained, colours=item.colours
            )
            write_image(temp, labels.astype(np.uint16 if labels.max() < 65536 else np.uint32))
            records.append(
                {
                    **{k: v for k, v in row.items() if pd.notna(v)},
                    "pred": str(final.resolve()),
                    "instances": int(labels.max()),
                    "diameter": round(diameter, 2),
                    "seconds": round(seconds, 3),
                }
            )
            log.info("%s: %d instances in %.2f s", row["sample"], labels.max(), seconds)
        frame = pd.DataFrame(records)
        frame.to_csv(temps[-1], sep="\t", index=False)
    return frame


def score_spreads(
    model: Any,
    trained_diameter: float,
    sheet: str | Path,
    settings: SegmentSettings,
    name: str = "spreads",
    estimate: Callable[[np.ndarray], float] = estimate_diameter,
    baseline: Callable[[np.ndarray], np.ndarray] = threshold_components,
) -> pd.DataFrame:
    """Segment every annotated row of a metaphase sheet and score it at IoU 0.5 against its
    truth pieces (:attr:`Metaphase.truth_pieces`): one row per image with the model's and the
    ``baseline``'s TP/FP/FN, AP and F1, the instance counts, the estimated and true object
    diameters and the segmentation seconds (model loaded).

    Parameters
    ----------
    model : Any
        A ``cellpose.models.CellposeModel``, e.g. from :func:`load_cellpose`.
    trained_diameter : float
        The training objects' diameter, px (:func:`segment_spread`).
    sheet : str or pathlib.Path
        Metaphase sheet; rows without a truth mask are skipped.
    settings : SegmentSettings
        As :func:`segment_spread` takes.
    name : str, optional
        Label of the progress bar; default ``"spreads"``.
    estimate : callable, optional
        (H, W) DAPI image -> object diameter, px; default :func:`estimate_diameter`.
    baseline : callable, optional
        (H, W) DAPI image -> (H, W) instance labels; default :func:`threshold_components`.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``truth`` and ``found`` (instance counts), ``tp``, ``fp``,
        ``fn``, ``ap``, ``f1``, the same with prefix ``baseline_`` and with prefix
        ``dapi_only_`` (the model before the M-FISH colour merge, :func:`colour_merged`; the
        same where a spread has no fluor channels), ``diameter`` and ``truth_diameter`` (px)
        and ``seconds``.
    """
    rows = []
    items = [item for item in iter_sheet(sheet) if item.truth is not None]
    for item in progress_bar(items, desc=f"score {name}", unit="image"):
        dapi_only, diameter, seconds = segment_spread(
            model, item.dapi, settings, trained_diameter, estimate
        )
        started = time.perf_counter()
        labels = colour_merged(dapi_only, item.colours, settings, diameter)
        seconds += time.perf_counter() - started
        truth = item.truth_pieces
        scores = instance_scores(truth, labels, 0.5)
        unmerged = instance_scores(truth, dapi_only, 0.5)
        classical = instance_scores(truth, baseline(item.dapi), 0.5)
        rows.append(
            {
                "sample": item.sample,
                "truth": scores["tp"] + scores["fn"],
                "found": scores["tp"] + scores["fp"],
                **{key: scores[key] for key in ("tp", "fp", "fn", "ap", "f1")},
                **{f"baseline_{key}": classical[key] for key in ("tp", "fp", "fn", "ap", "f1")},
                **{f"dapi_only_{key}": unmerged[key] for key in ("tp", "fp", "fn", "ap", "f1")},
                "diameter": diameter,
                "truth_diameter": object_diameter(truth),
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)
