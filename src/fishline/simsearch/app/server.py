"""The SimSearch annotation server: a Starlette app behind the browser pages in ``static/``.

The browser holds what the user marks (classes, prototype boxes, thresholds, flags) and
asks the server for proposals; the server holds the images and the feature grids. The
first prototype fixes the patch size: then the features of every displayed image are
computed once (progress in the log) and every later search, threshold moves included, is
answered from the cached grids by :class:`fishline.simsearch.search.Searcher`. An
existing annotations file is resumed (its patch size is known, so the features are computed
at start-up). With a trained model the app also shows its detections on the displayed
images, filtered in the page by per-class confidence sliders.

Security: the app is meant to be served on 127.0.0.1 only (:func:`serve`); requests naming
another host are refused (DNS rebinding), POST bodies must be JSON (a foreign web page
cannot post JSON cross-origin without a preflight this app never answers), images are
served by sheet name only (never by path) and the only file written is ``out``.

About 730 lines: the session state (feature grids, channel weights), the JSON endpoints and
their input checks form one app.
"""

from __future__ import annotations

import io
import json
import math
import socket
import threading
import time
import webbrowser
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fishline.errors import InputError
from fishline.logging import get_logger, progress_bar
from fishline.schema import default
from fishline.simsearch.annotations import check_annotations, read_annotations, write_annotations
from fishline.simsearch.channels import (
    learn_channel_weights,
    normalised_channel_weights,
    reweight_channels,
)
from fishline.simsearch.features import (
    BACKBONES,
    CHANNEL_MODES,
    FeatureExtractor,
    FeatureGrid,
    grid_index,
)
from fishline.simsearch.images import ImageSet, channel_correlation, load_image_set
from fishline.simsearch.search import Searcher, background_candidates

STATIC = Path(__file__).with_name("static")
HOSTS = ["127.0.0.1", "localhost"]
# Display colour (r, g, b) of channel i (cycled): blue for the first (usually DNA), then green, ...
PALETTE = [
    (0.3, 0.5, 1.0),
    (0.0, 1.0, 0.0),
    (1.0, 0.0, 0.0),
    (1.0, 0.0, 1.0),
    (1.0, 1.0, 0.0),
    (0.0, 1.0, 1.0),
]
MAX_CANDIDATES = 500
DISPLAYED = default("simsearch.displayed")
# Detections are computed once at this confidence floor and filtered in the page: maxima
# closer than detect_image's radius are equal, so filtering at c gives detect_image at c.
CONFIDENCE_FLOOR = 1e-6

log = get_logger("simsearch.app")


class RequestError(Exception):
    """A request the server refuses with 400; ``item`` names the entry at fault."""

    def __init__(self, problem: str, item: str | None = None) -> None:
        self.problem = problem
        self.item = item
        super().__init__(f"[{item}] {problem}" if item else problem)


def choose_displayed(names: Sequence[str], displayed: int | Sequence[str] | None) -> list[str]:
    """The images shown to the user: the first ``displayed`` of the sheet, or those named
    (None: the first :data:`DISPLAYED`, or all when the sheet has fewer).

    Errors name the unknown image or the impossible count.
    """
    if displayed is None:
        return list(names[:DISPLAYED])
    if isinstance(displayed, int):
        if not 1 <= displayed <= len(names):
            raise InputError(
                "--displayed", f"asks for {displayed} image(s); the sheet has {len(names)}"
            )
        return list(names[:displayed])
    chosen = list(dict.fromkeys(displayed))
    unknown = [name for name in chosen if name not in names]
    if unknown or not chosen:
        raise InputError("--displayed", f"unknown image(s) {unknown}; the sheet has {list(names)}")
    return chosen


def composite(image: np.ndarray, shown: Sequence[int]) -> np.ndarray:
    """RGB uint8 view of a C x H x W image in [0, 1]: channel i in colour ``PALETTE[i]``, summed."""
    rgb = np.zeros((*image.shape[1:], 3), dtype=np.float32)
    for index in shown:
        rgb += image[index][..., None] * np.asarray(PALETTE[index % len(PALETTE)], np.float32)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


# Annotation documents are a few kB; anything near this is not from the app.
MAX_BODY = 4 * 2**20


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the annotations file can hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to infinity")
    return value


def parse_json(raw: bytes) -> Any:
    """A request body as JSON with finite numbers only (no NaN, Infinity or 1e999, which would
    make the saved file unreadable); too deep nesting is a ValueError too, not a crash."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as error:
        raise ValueError("nested too deeply") from error


def _number(value: Any, item: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"expected a number, got {value!r}", item)
    if not low <= value <= high:
        raise RequestError(f"{value} is outside [{low}, {high}]", item)
    return float(value)


class Session:
    """Images, lazily built feature grids and caches behind one annotation app."""

    def __init__(
        self,
        image_set: ImageSet,
        out: Path,
        displayed: list[str],
        backbone: str,
        weights: str | None,
        seed: int,
        channel_mode: str = "mixed",
        channel_weights: Sequence[float] | None = None,
    ) -> None:
        self.image_set = image_set
        self.out = out
        self.displayed = displayed
        self.backbone = backbone
        self.weights = weights
        self.seed = seed
        self.channel_mode = channel_mode
        self.channel_weights = channel_weights
        self.shapes = {name: image_set.shape(name) for name in image_set.names}
        self.correlation = channel_correlation(image_set)
        self.patch: tuple[int, int] | None = None
        self.extractor: FeatureExtractor | None = None
        self.grids: dict[str, FeatureGrid] = {}  # at the current channel weights
        self.start_grids: dict[str, FeatureGrid] = {}  # at the extractor's (start) weights
        self.searcher: Searcher | None = None
        self.vectors: dict[tuple, np.ndarray] = {}  # per box, at the start weights
        self.current_weights: np.ndarray | None = None  # set with the patch
        self.lock = threading.Lock()
        self.resumed: dict[str, Any] | None = None
        self.model_classes: list[str] = []
        self.detect_stride: int | None = None
        self.detections: list[dict[str, Any]] = []

    def resume(self, data: dict[str, Any]) -> None:
        """Continue from saved annotations: their images, patch size (features now) and marks."""
        if data["channels"] != self.image_set.channels:
            raise InputError(
                str(self.out),
                f"annotated with channels {data['channels']}, not {self.image_set.channels}: "
                "pass --channels " + ",".join(data["channels"]),
            )
        if data.get("backbone", self.backbone) != self.backbone:
            log.warning(
                "%s: thresholds were chosen with backbone %s, now %s",
                self.out,
                data["backbone"],
                self.backbone,
            )
        if data.get("channel_mode", self.channel_mode) != self.channel_mode:
            log.warning(
                "%s: thresholds were chosen with channel mode %s, now %s (--channel-mode)",
                self.out,
                data["channel_mode"],
                self.channel_mode,
            )
        self.displayed = list(data["displayed"])
        self.fix_patch((data["patch"]["height"], data["patch"]["width"]))
        saved = data.get("channel_weights")
        assert self.current_weights is not None  # set with the patch
        if (
            data.get("channel_mode") == "separate" == self.channel_mode
            and saved is not None
            and not np.allclose(saved, self.current_weights, atol=1e-6)
        ):
            self.set_channel_weights(saved)  # the saved thresholds hold for these weights
        self.resumed = data
        log.info("resuming %s: %d class(es)", self.out, len(data["classes"]))

    def find_detections(self, path: str, stride: int | None) -> None:
        """Detections of a trained SimSearch model on the displayed images, every local
        maximum down to :data:`CONFIDENCE_FLOOR` (the page applies each class's confidence).

        Detection and model code (torch) load only here: the app starts faster without.
        """
        from fishline import models
        from fishline.simsearch.detect import DETECTION_COLUMNS, detect_image
        from fishline.simsearch.train import BACKGROUND

        net, info = models.load(path)
        if info["kind"] != "simsearch":
            raise InputError(path, f"not a SimSearch model (kind {info['kind']})")
        if info["spec"]["in_channels"] != len(self.image_set.channels):
            raise InputError(
                path,
                f"the model takes {info['spec']['in_channels']} channel(s); "
                f"{len(self.image_set.channels)} are loaded ({self.image_set.channels})",
            )
        patch = (int(info["metadata"]["patch"][0]), int(info["metadata"]["patch"][1]))
        self.detect_stride = int(stride) if stride else max(1, patch[1] // 4)
        classes = list(info["class_names"])
        self.model_classes = [name for name in classes if name != BACKGROUND]
        frames = []
        for name in progress_bar(self.displayed, desc="detections", unit="image"):
            frames.append(
                detect_image(
                    net,
                    self.image_set.images[name],
                    name,
                    classes,
                    patch,
                    self.detect_stride,
                    dict.fromkeys(self.model_classes, CONFIDENCE_FLOOR),
                    input_size=info["metadata"].get("input_size"),
                )
            )
        table = pd.concat(frames, ignore_index=True)[DETECTION_COLUMNS]
        self.detections = [
            {
                "image": str(image),
                "x": float(x),
                "y": float(y),
                "class": str(label),
                "confidence": float(confidence),
            }
            for image, x, y, label, confidence in table.itertuples(index=False)
        ]
        log.info("%d candidate detections on %d image(s)", len(table), len(frames))

    def detections_json(self) -> dict[str, Any]:
        """The model's target classes, its stride and every candidate detection."""
        return {
            "classes": self.model_classes,
            "stride": self.detect_stride,
            "detections": self.detections,
        }

    def info(self) -> dict[str, Any]:
        """What the page needs at start: images, channels, correlation, the fixed patch."""
        return {
            "sheet": self.image_set.sheet,
            "channels": self.image_set.channels,
            "displayed": [
                {"name": name, "height": self.shapes[name][0], "width": self.shapes[name][1]}
                for name in self.displayed
            ],
            "correlation": np.round(self.correlation.to_numpy(), 4).tolist(),
            "backbone": self.backbone,
            **self.channel_settings(),
            "patch": self._patch_json(),
            "stride": self._stride(),
            "out": str(self.out),
            "annotations": self.resumed,
            "model": {"classes": self.model_classes} if self.model_classes else None,
        }

    def _patch_json(self) -> dict[str, int] | None:
        if self.patch is None:
            return None
        return {"height": self.patch[0], "width": self.patch[1]}

    def _stride(self) -> float | None:
        if not self.grids:
            return None
        return float(next(iter(self.grids.values())).stride)

    def png(self, name: str, channels: str | None) -> bytes:
        """PNG of one sheet image with the named channels on (all when ``channels`` is None)."""
        known = self.image_set.channels
        wanted = known if channels is None else [part for part in channels.split(",") if part]
        unknown = [part for part in wanted if part not in known]
        if unknown:
            raise RequestError(f"unknown channel(s) {unknown}; known: {known}", "channels")
        rgb = composite(self.image_set.images[name], [known.index(part) for part in wanted])
        buffer = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buffer, format="PNG")
        return buffer.getvalue()

    def boxes(self, value: Any, item: str = "boxes") -> list[tuple[str, int, int, int, int]]:
        """Prototype boxes (image, x, y, width, height) of a request, checked against the images."""
        if not isinstance(value, list) or not value:
            raise RequestError("expected a non-empty list of boxes", item)
        boxes = []
        for number, entry in enumerate(value):
            label = f"{item}[{number}]"
            if not isinstance(entry, dict):
                raise RequestError(f"expected an object, got {entry!r}", label)
            image = entry.get("image")
            if image not in self.displayed:
                raise RequestError(f"image {image!r} is not a displayed image", label)
            height, width = self.shapes[image]
            x, y, box_width, box_height = (
                round(_number(entry.get(key), f"{label}.{key}"))
                for key in ("x", "y", "width", "height")
            )
            if box_width < 16 or box_height < 16:
                raise RequestError(f"box {box_width} x {box_height} is under 16 x 16 px", label)
            if x < 0 or y < 0 or x + box_width > width or y + box_height > height:
                raise RequestError(
                    f"box x={x} y={y} {box_width} x {box_height} is outside image '{image}' "
                    f"({width} x {height})",
                    label,
                )
            if self.patch is not None and (box_height, box_width) != self.patch:
                raise RequestError(
                    f"box {box_width} x {box_height} differs from the patch size "
                    f"{self.patch[1]} x {self.patch[0]} fixed by the first prototype",
                    label,
                )
            boxes.append((image, x, y, box_width, box_height))
        return boxes

    def fix_patch(self, patch: tuple[int, int]) -> None:
        """Fix the patch size and compute every displayed image's feature grid once."""
        extractor = FeatureExtractor(
            self.backbone,
            patch,
            len(self.image_set.channels),
            weights=self.weights,
            seed=self.seed,
            channels=self.channel_mode,
            channel_weights=self.channel_weights,
        )
        grids = {}
        for name in progress_bar(self.displayed, desc="image features", unit="image"):
            start = time.perf_counter()
            grids[name] = extractor.image_grid(self.image_set.images[name])
            log.info(
                "features of %s: %d x %d windows in %.2f s",
                name,
                *grids[name].vectors.shape[:2],
                time.perf_counter() - start,
            )
        self.extractor, self.start_grids = extractor, grids
        self.grids, self.searcher = grids, Searcher(grids)
        self.current_weights = extractor.channel_weights
        self.patch = patch

    def prototype_vectors(self, boxes: list[tuple[str, int, int, int, int]]) -> np.ndarray:
        """Vectors of the boxes and their rotations (k x d) at the current channel weights."""
        return self._at_current_weights(np.concatenate(self._start_vectors(boxes)))

    def _start_vectors(self, boxes: list[tuple[str, int, int, int, int]]) -> list[np.ndarray]:
        """Per box, its vector and its rotations' at the start weights, cached per box (the
        first box fixes the patch)."""
        with self.lock:
            if self.patch is None:
                self.fix_patch((boxes[0][4], boxes[0][3]))
                boxes = self.boxes([_box_json(box) for box in boxes])
            assert self.extractor is not None
            for box in boxes:
                if box not in self.vectors:
                    image, *rectangle = box
                    self.vectors[box] = self.extractor.prototype_vectors(
                        self.image_set.images[image], tuple(rectangle)
                    )
            return [self.vectors[box] for box in boxes]

    def _at_current_weights(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors made at the start weights as the current channel weights make them."""
        assert self.extractor is not None and self.current_weights is not None
        start = self.extractor.channel_weights
        if np.array_equal(start, self.current_weights):
            return vectors
        return reweight_channels(vectors, start, self.current_weights)

    def channel_settings(self) -> dict[str, Any]:
        """The channel mode and the current (normalised) channel weights."""
        weights = self.current_weights
        if weights is None:
            weights = normalised_channel_weights(self.channel_weights, len(self.image_set.channels))
        return {
            "channel_mode": self.channel_mode,
            "channel_weights": [round(float(w), 6) for w in weights],
        }

    def _require_separate_channels(self) -> None:
        if self.channel_mode != "separate":
            raise RequestError(
                "channel weights apply to separate channels (start with --channel-mode separate)",
                "channel_weights",
            )

    def set_channel_weights(self, weights: Sequence[float]) -> None:
        """Search at other channel weights (separate channels only): the feature grids are
        reweighted from those made at the start weights, without the backbone."""
        self._require_separate_channels()
        if self.extractor is None:
            raise RequestError("draw a prototype first: it fixes the features", "channel_weights")
        new = normalised_channel_weights(weights, len(self.image_set.channels))
        start = self.extractor.channel_weights
        grids = {}
        for name, grid in self.start_grids.items():
            flat = grid.vectors.reshape(-1, grid.vectors.shape[-1])
            vectors = reweight_channels(flat, start, new).reshape(grid.vectors.shape)
            grids[name] = replace(grid, vectors=vectors)
        with self.lock:
            self.grids, self.searcher = grids, Searcher(grids)
            self.current_weights = new
        log.info("channel weights now %s", np.round(new, 3).tolist())

    def learn_weights(self, body: dict[str, Any]) -> dict[str, Any]:
        """Channel weights learned from the classes' prototypes (with their rotations) and
        negatives (:func:`~fishline.simsearch.channels.learn_channel_weights`), then used
        for every search; ``{"reset": true}`` goes back to the start weights."""
        self._require_separate_channels()
        if body.get("reset") is True:
            if self.extractor is not None:
                self.set_channel_weights(self.extractor.channel_weights)
            return self.channel_settings()
        entries = body.get("classes")
        if not isinstance(entries, list) or not entries:
            raise RequestError("expected a non-empty list of classes", "classes")
        vectors, labels, groups, negatives, negative_labels = [], [], [], [], []
        example = 0  # the views of one prototype (its rotations) share a group
        for index, entry in enumerate(entries):
            item = f"classes[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise RequestError("expected an object with a name", item)
            boxes = self.boxes(entry.get("prototypes"), f"{item}.prototypes")
            for views in self._start_vectors(boxes):
                vectors.append(views)
                labels += [entry["name"]] * len(views)
                groups += [example] * len(views)
                example += 1
            points = entry.get("negatives", [])
            if not isinstance(points, list):
                raise RequestError("expected a list of points", f"{item}.negatives")
            for number, point in enumerate(points):
                negatives.append(self._start_vector(point, f"{item}.negatives[{number}]"))
                negative_labels.append(entry["name"])
        assert self.extractor is not None
        learned = learn_channel_weights(
            np.concatenate(vectors),
            labels,
            self.extractor.channel_weights,
            np.stack(negatives) if negatives else None,
            negative_labels or None,
            groups,
        )
        self.set_channel_weights(learned)
        return self.channel_settings()

    def _start_vector(self, point: Any, item: str) -> np.ndarray:
        """The start-weight vector of the grid window nearest a point on a displayed image."""
        if not isinstance(point, dict) or point.get("image") not in self.start_grids:
            raise RequestError(f"expected a point on a displayed image, got {point!r}", item)
        grid = self.start_grids[point["image"]]
        x, y = _number(point.get("x"), f"{item}.x"), _number(point.get("y"), f"{item}.y")
        return grid.vectors[grid_index(grid, x, y)]

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        """Proposals of one class: local similarity maxima of its prototypes above the threshold."""
        boxes = self.boxes(body.get("boxes"))
        threshold = _number(body.get("threshold"), "threshold", -1.0, 1.0)
        vectors = self.prototype_vectors(boxes)
        assert self.searcher is not None
        proposals = self.searcher.proposals(vectors, threshold)
        return {
            "patch": self._patch_json(),
            "stride": self._stride(),
            "proposals": _points(proposals),
        }

    def background(self, body: dict[str, Any]) -> dict[str, Any]:
        """Hard and easy background candidates: most and least like the mean prototype."""
        boxes = self.boxes(body.get("boxes"))
        count = int(_number(body.get("count"), "count", 1, MAX_CANDIDATES))
        exclude = body.get("exclude", [])
        if not isinstance(exclude, list):
            raise RequestError("expected a list of points", "exclude")
        rows = []
        for number, point in enumerate(exclude):
            label = f"exclude[{number}]"
            if not isinstance(point, dict) or point.get("image") not in self.displayed:
                raise RequestError(f"expected a point on a displayed image, got {point!r}", label)
            rows.append(
                (
                    point["image"],
                    _number(point.get("x"), f"{label}.x"),
                    _number(point.get("y"), f"{label}.y"),
                )
            )
        mean = self.prototype_vectors(boxes).mean(axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        assert self.patch is not None
        hard, easy = background_candidates(
            self.grids,
            mean.astype(np.float32),
            pd.DataFrame(rows, columns=["image", "x", "y"]),
            count,
            self.patch[1] / 2,
            self.seed,
        )
        return {"hard": _points(hard), "easy": _points(easy)}

    def save(self, body: Any) -> dict[str, Any]:
        """Check the annotations the page sends and write them to ``out`` atomically."""
        try:
            data = check_annotations(body, "annotations", self.shapes)
        except InputError as error:
            raise RequestError(error.problem, error.item) from error
        if self.patch is None:
            raise RequestError(
                "no prototype drawn yet: the first one fixes the patch size", "patch"
            )
        if (data["patch"]["height"], data["patch"]["width"]) != self.patch:
            raise RequestError(f"differs from the fixed patch {self._patch_json()}", "patch")
        for index, entry in enumerate(data["classes"]):
            self.boxes(entry["prototypes"], f"classes[{index}].prototypes")
        # The thresholds hold for these features only, so the file says how they were made.
        data = {**data, **self.channel_settings()}
        write_annotations(self.out, data)
        log.info("wrote %s", self.out)
        return {
            "saved": str(self.out),
            "classes": len(data["classes"]),
            "negatives": sum(len(entry["negatives"]) for entry in data["classes"]),
        }


def _box_json(box: tuple[str, int, int, int, int]) -> dict[str, Any]:
    image, x, y, width, height = box
    return {"image": image, "x": x, "y": y, "width": width, "height": height}


def _points(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"image": str(image), "x": float(x), "y": float(y), "score": round(float(score), 6)}
        for image, x, y, score in frame[["image", "x", "y", "score"]].itertuples(index=False)
    ]


def create_app(
    sheet: str | Path,
    out: str | Path,
    displayed: int | Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    backbone: str = default("simsearch.search.backbone"),
    weights: str | None = None,
    model: str | None = None,
    detect_stride: int | None = None,
    seed: int = 0,
    channel_mode: str = default("simsearch.search.channels"),
    channel_weights: Sequence[float] | None = None,
) -> Starlette:
    """The annotation app for ``sheet``; Save writes ``out``, the only file the app writes.
    (11 parameters, about 105 lines: one per option of `fishline annotate`, and the routes
    are closures over the one session they serve.)

    ``displayed`` is a count (the sheet's first images), image names or None (the first
    three); ``channels`` picks
    the channels searched and shown (all when None); ``backbone``/``weights`` and
    ``channel_mode``/``channel_weights`` (the channels through the backbone together, or
    one by one with these weights) go to
    :class:`~fishline.simsearch.features.FeatureExtractor`; ``seed`` draws the easy
    background candidates. When ``out`` exists it is resumed (its displayed images, patch
    and marks; features are computed at start-up). ``model`` (a trained SimSearch model
    file) adds the detection step: its detections on the displayed images (sliding-window
    stride ``detect_stride``, default a quarter of the patch width) under per-class
    confidence sliders, saved as each class's ``confidence``.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(str(out), "the folder to save the annotations in does not exist")
    if backbone not in BACKBONES:
        raise InputError("--backbone", f"unknown backbone '{backbone}' (known: {BACKBONES})")
    if channel_mode not in CHANNEL_MODES:
        raise InputError(
            "--channel-mode", f"unknown mode '{channel_mode}' (known: {CHANNEL_MODES})"
        )
    if weights is not None and not Path(weights).is_file():
        raise InputError(str(weights), "weights file not found")
    image_set = load_image_set(sheet, list(channels) if channels else None)
    session = Session(
        image_set,
        out,
        choose_displayed(image_set.names, displayed),
        backbone,
        weights,
        seed,
        channel_mode,
        channel_weights,
    )
    if out.exists():
        session.resume(read_annotations(out, session.shapes))
    if model is not None:
        if not Path(model).is_file():
            raise InputError(str(model), "model file not found")
        session.find_detections(str(model), detect_stride)
    log.info("%d image(s) loaded, %d displayed", len(image_set.names), len(session.displayed))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def info(request: Request) -> Response:
        return JSONResponse(session.info())

    async def detections(request: Request) -> Response:
        return JSONResponse(session.detections_json())

    async def image(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in session.shapes:
            return JSONResponse({"error": f"no image '{name}' in the sheet"}, status_code=404)
        body = await run_in_threadpool(session.png, name, request.query_params.get("channels"))
        return Response(body, media_type="image/png")

    def action(method: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, 415)
            declared = request.headers.get("content-length", "0")
            if not declared.isdigit() or int(declared) > MAX_BODY:
                return JSONResponse({"error": f"the body must be at most {MAX_BODY} bytes"}, 413)
            raw = b""
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_BODY:
                    return JSONResponse(
                        {"error": f"the body must be at most {MAX_BODY} bytes"}, 413
                    )
            try:
                body = parse_json(raw)
            except ValueError as error:
                return JSONResponse({"error": f"the body is not usable JSON: {error}"}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, 400)
            return JSONResponse(await run_in_threadpool(method, body))

        return endpoint

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestError | InputError)
        item = error.item
        return JSONResponse({"error": str(error), "item": item}, status_code=400)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/image/{name}", image),
        Route("/api/detections", detections),
        Route("/api/search", action(session.search), methods=["POST"]),
        Route("/api/background", action(session.background), methods=["POST"]),
        Route("/api/save", action(session.save), methods=["POST"]),
        Route("/api/channel_weights", action(session.learn_weights), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)],
        exception_handlers={RequestError: refused, InputError: refused},
    )
    app.state.session = session
    return app


def open_socket(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: a free one), never on other interfaces."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise InputError("--port", f"cannot listen on 127.0.0.1:{port}: {error}") from error
    sock.listen(64)
    return sock


def server_for(app: Starlette, sock: socket.socket) -> tuple[uvicorn.Server, str]:
    """A uvicorn server for ``app`` on ``sock`` and the URL it answers at."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    return uvicorn.Server(config), f"http://127.0.0.1:{port}/"


def serve(app: Starlette, port: int = 0, browser: bool = True) -> None:
    """Serve ``app`` on 127.0.0.1 until Ctrl-C; print the URL and optionally open a browser."""
    sock = open_socket(port)
    server, url = server_for(app, sock)
    print(f"fishline annotate: open {url} (Ctrl-C stops)", flush=True)
    if browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown
        print("fishline annotate: stopped", flush=True)
    finally:
        sock.close()
