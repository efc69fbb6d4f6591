"""SimSearch annotation UI: API checks over HTTP and one Playwright run in Debian chromium.

The server runs in a thread on a free 127.0.0.1 port over a tiny sheet of two 160 x 160
two-channel images with bright discs. Without chromium or playwright the browser test skips,
except under CI (the CI environment variable set), where it fails.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, browser_or_skip
from PIL import Image

from fishline import models
from fishline.cli import main
from fishline.io import write_image
from fishline.nets.simsearch import SimSearchNet
from fishline.simsearch.annotations import read_annotations, write_annotations
from fishline.simsearch.app.server import MAX_BODY, create_app, open_socket, server_for
from fishline.simsearch.detect import detect_image
from fishline.simsearch.images import channel_correlation, load_image_set

SIZE = 160
RADIUS = 7
# Disc centres (x, y) per image: the objects a prototype should find.
DISCS = {
    "a": [(40, 40), (110, 35), (75, 90), (30, 125), (125, 120)],
    "b": [(50, 60), (115, 75), (60, 125), (130, 135)],
}
SHAPES = {name: (SIZE, SIZE) for name in DISCS}

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SimSearch sheet of two images: dna and gfp bright in the discs, on the same uneven
    illumination (a left-to-right ramp) with independent noise."""
    folder = tmp_path_factory.mktemp("sheet")
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    lines = ["image\tpath\tchannels"]
    for name, centres in DISCS.items():
        image = rng.normal(300.0, 10.0, (2, SIZE, SIZE)) + 100.0 * cols / SIZE
        for x, y in centres:
            disc = (cols - x) ** 2 + (rows - y) ** 2 <= RADIUS**2
            image[0][disc] += 3000.0
            image[1][disc] += 1500.0
        write_image(folder / f"{name}.tif", image.clip(0, 65535).astype(np.uint16), ["dna", "gfp"])
        lines.append(f"{name}\t{name}.tif\tdna,gfp")
    path = folder / "sheet.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def running(sheet: Path, out: Path, **options: object) -> Iterator[int]:
    """Serve a fresh annotation app for ``sheet`` in a thread; yields its port."""
    app = create_app(sheet, out, **{"displayed": 2, "backbone": "efficientnet_lite0", **options})
    sock = open_socket(0)
    server, _ = server_for(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def request(
    port: int, method: str, path: str, body: object = None, headers: dict | None = None
) -> tuple[int, bytes]:
    """One raw HTTP request (the path is sent exactly as given, no normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if body is not None else {}
    sent.update(headers or {})
    connection.request(method, path, body=payload, headers=sent)
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture(scope="module")
def api(sheet: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A running app for the API tests and the file its Save writes."""
    out = tmp_path_factory.mktemp("api") / "annotations.json"
    with running(sheet, out) as port:
        yield port, out


def box(image: str, x: int, y: int, size: int = 32) -> dict:
    """The size x size box centred on (x, y)."""
    return {"image": image, "x": x - size // 2, "y": y - size // 2, "width": size, "height": size}


def test_info_and_image(api: tuple[int, Path], sheet: Path) -> None:
    port, _ = api
    status, body = request(port, "GET", "/api/info")
    info = json.loads(body)
    assert status == 200
    assert info["channels"] == ["dna", "gfp"]
    assert info["displayed"] == [
        {"name": "a", "height": SIZE, "width": SIZE},
        {"name": "b", "height": SIZE, "width": SIZE},
    ]
    correlation = np.array(info["correlation"])
    assert correlation.shape == (2, 2)
    assert np.allclose(np.diag(correlation), 1.0)
    assert correlation[0, 1] > 0.8  # the same ramp and discs in both channels
    expected = channel_correlation(load_image_set(sheet)).to_numpy()
    assert np.allclose(correlation, expected, atol=1e-4)
    status, body = request(port, "GET", "/api/image/a?channels=gfp")
    rgb = np.asarray(Image.open(io.BytesIO(body)))
    assert status == 200 and rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    assert rgb[40, 40, 1] == 255  # gfp is green, saturated in a disc
    assert rgb[40, 40, 0] == 0 and rgb[40, 40, 2] == 0
    assert rgb[5, 5, 1] < 60  # background
    status, body = request(port, "GET", "/api/image/a?channels=")
    assert status == 200 and np.asarray(Image.open(io.BytesIO(body))).max() == 0
    status, body = request(port, "GET", "/api/image/a?channels=dapi")
    assert status == 400 and b"dapi" in body


def test_only_sheet_images_and_local_hosts(api: tuple[int, Path]) -> None:
    port, _ = api
    for path in (
        "/api/image/..%2Fsheet.tsv",
        "/api/image/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/image/%2Fetc%2Fpasswd",
        "/api/image/a.tif",
        "/static/../server.py",
        "/static/..%2Fserver.py",
        "/static/%2E%2E/__init__.py",
    ):
        status, body = request(port, "GET", path)
        assert status == 404, path
        assert b"import" not in body and b"root:" not in body
    status, _ = request(port, "GET", "/", headers={"Host": "attacker.example"})
    assert status == 400
    status, body = request(port, "GET", "/static/app.js")
    assert status == 200 and b"/api/search" in body


def test_search_and_background(api: tuple[int, Path]) -> None:
    port, _ = api
    status, body = request(
        port, "POST", "/api/search", {"boxes": [box("a", 40, 40)], "threshold": 0.5}
    )
    assert status == 200, body
    found = json.loads(body)
    assert found["patch"] == {"height": 32, "width": 32}
    assert found["stride"] == pytest.approx(3.2)
    proposals = found["proposals"]
    best = max(proposals, key=lambda point: point["score"])
    assert best["image"] == "a"
    # the prototype's own disc (peaks interpolated from the stride-16 map sit a few px off)
    assert np.hypot(best["x"] - 40, best["y"] - 40) <= 8
    centres = [(name, x, y) for name, points in DISCS.items() for x, y in points]
    near = [
        any(name == p["image"] and np.hypot(p["x"] - x, p["y"] - y) <= 8 for p in proposals)
        for name, x, y in centres
    ]
    assert sum(near) >= 7  # most discs of both images are proposed at 0.5
    status, body = request(
        port, "POST", "/api/search", {"boxes": [box("a", 40, 40)], "threshold": 0.999}
    )
    assert all(point["score"] >= 0.999 for point in json.loads(body)["proposals"])
    # Later boxes keep the patch size; the threshold is a cosine.
    status, body = request(
        port,
        "POST",
        "/api/search",
        {"boxes": [box("a", 40, 40), box("b", 60, 60, 40)], "threshold": 0.5},
    )
    assert status == 400 and json.loads(body)["item"] == "boxes[1]"
    status, body = request(
        port, "POST", "/api/search", {"boxes": [box("a", 40, 40)], "threshold": 1.5}
    )
    assert status == 400 and json.loads(body)["item"] == "threshold"
    status, body = request(
        port, "POST", "/api/search", {"boxes": [box("c", 40, 40)], "threshold": 0.5}
    )
    assert status == 400 and "not a displayed image" in json.loads(body)["error"]

    exclude = [{"image": "a", "x": 40.0, "y": 40.0}, {"image": "b", "x": 50.0, "y": 60.0}]
    status, body = request(
        port,
        "POST",
        "/api/background",
        {"boxes": [box("a", 40, 40)], "exclude": exclude, "count": 4},
    )
    assert status == 200, body
    candidates = json.loads(body)
    assert len(candidates["hard"]) == 4 and len(candidates["easy"]) == 4
    hard_scores = [point["score"] for point in candidates["hard"]]
    assert min(hard_scores) > max(point["score"] for point in candidates["easy"])
    for point in candidates["hard"] + candidates["easy"]:
        for other in exclude:
            if point["image"] == other["image"]:
                assert np.hypot(point["x"] - other["x"], point["y"] - other["y"]) >= 16


def test_channel_weights_learned_from_prototypes(tmp_path: Path) -> None:
    """Discs of two classes with the same DNA, GFP in one class only: the weights learned
    from two prototypes per class put GFP first, a "lit" prototype then scores the dark
    discs lower, Save records the weights and a resumed app searches with them."""
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    lit, dark = [(40, 40), (110, 35), (30, 125)], [(75, 90), (125, 120), (120, 75)]
    image = rng.normal(300.0, 10.0, (2, SIZE, SIZE))
    for centres, gfp in ((lit, 1500.0), (dark, 0.0)):
        for x, y in centres:
            disc = (cols - x) ** 2 + (rows - y) ** 2 <= RADIUS**2
            image[0][disc] += 3000.0
            image[1][disc] += gfp
    write_image(tmp_path / "a.tif", image.clip(0, 65535).astype(np.uint16), ["dna", "gfp"])
    (tmp_path / "sheet.tsv").write_text("image\tpath\tchannels\na\ta.tif\tdna,gfp\n")
    out = tmp_path / "annotations.json"
    classes = [  # two prototypes each: the weights come from pairs of one class's examples
        {"name": "lit", "prototypes": [box("a", *p) for p in lit[:2]], "negatives": []},
        {"name": "dark", "prototypes": [box("a", *p) for p in dark[:2]], "negatives": []},
    ]

    def dark_score(port: int) -> float:
        """The best score of a "lit" prototype's proposals on the dark discs (-1: none)."""
        status, body = request(
            port, "POST", "/api/search", {"boxes": [box("a", *lit[0])], "threshold": -1}
        )
        assert status == 200, body
        points = json.loads(body)["proposals"]
        near = [
            p["score"] for p in points for x, y in dark if np.hypot(p["x"] - x, p["y"] - y) <= 16
        ]
        return max(near, default=-1.0)

    app = {"displayed": 1, "channel_mode": "separate"}
    with running(tmp_path / "sheet.tsv", out, **app) as port:
        status, body = request(port, "GET", "/api/info")
        assert json.loads(body)["channel_weights"] == [0.5, 0.5]
        before = dark_score(port)
        assert before > 0.5  # same DNA: a dark disc looks like a lit one
        status, body = request(port, "POST", "/api/channel_weights", {"classes": classes})
        assert status == 200, body
        learned = json.loads(body)["channel_weights"]
        assert learned[1] > 0.7 and sum(learned) == pytest.approx(1, abs=1e-5)
        after = dark_score(port)
        assert after < before - 0.1  # GFP now counts: dark discs look less like "lit"
        data = annotations(displayed=["a"], sheet=str(tmp_path / "sheet.tsv"))
        data["classes"][0]["prototypes"] = [box("a", *lit[0])]
        data["classes"][0]["positives"] = data["classes"][0]["negatives"] = []
        data["background"] = {"proposed": [], "not_background": []}
        status, body = request(port, "POST", "/api/save", data)
        assert status == 200, body
        assert json.loads(out.read_text())["channel_weights"] == pytest.approx(learned)
        status, body = request(port, "POST", "/api/channel_weights", {"reset": True})
        assert json.loads(body)["channel_weights"] == [0.5, 0.5]
        assert dark_score(port) == pytest.approx(before)
        status, body = request(port, "POST", "/api/channel_weights", {"classes": []})
        assert status == 400 and json.loads(body)["item"] == "classes"
    with running(tmp_path / "sheet.tsv", out, **app) as port:  # resumed
        status, body = request(port, "GET", "/api/info")
        assert json.loads(body)["channel_weights"] == pytest.approx(learned)
        assert dark_score(port) == pytest.approx(after)
    with running(
        tmp_path / "sheet.tsv", tmp_path / "m.json", **{**app, "channel_mode": "mixed"}
    ) as port:
        status, body = request(port, "POST", "/api/channel_weights", {"classes": classes})
        assert status == 400 and "separate" in json.loads(body)["error"]


def annotations(**changes: object) -> dict:
    """A valid annotations document of the API app (the search test fixed a 32 px patch)."""
    data = {
        "version": 1,
        "sheet": "sheet.tsv",
        "channels": ["dna", "gfp"],
        "displayed": ["a", "b"],
        "patch": {"width": 32, "height": 32},
        "stride": 3.2,
        "backbone": "efficientnet_lite0",
        "classes": [
            {
                "name": "disc",
                "prototypes": [box("a", 40, 40)],
                "threshold": 0.5,
                "positives": [{"image": "b", "x": 50.0, "y": 60.0, "score": 0.9}],
                "negatives": [{"image": "a", "x": 5.0, "y": 5.0, "score": 0.51}],
            }
        ],
        "background": {"proposed": [{"image": "b", "x": 5.0, "y": 150.0}], "not_background": []},
    }
    data.update(changes)
    return data


def test_save_checks_the_payload(api: tuple[int, Path]) -> None:
    port, out = api
    request(port, "POST", "/api/search", {"boxes": [box("a", 40, 40)], "threshold": 0.5})
    bad = annotations()
    bad["classes"][0]["prototypes"].append(box("b", 150, 80))  # crosses the right edge
    status, body = request(port, "POST", "/api/save", bad)
    refused = json.loads(body)
    assert status == 400 and refused["item"] == "classes[0].prototypes[1]"
    assert "outside image 'b'" in refused["error"]
    bad = annotations()
    bad["classes"][0]["negatives"][0]["x"] = 400.0
    status, body = request(port, "POST", "/api/save", bad)
    assert status == 400 and json.loads(body)["item"] == "classes[0].negatives[0]"
    bad = annotations()
    bad["classes"][0]["prototypes"] = [box("a", 40, 40, 48)]  # not the fixed 32 px patch
    status, body = request(port, "POST", "/api/save", bad)
    assert status == 400 and json.loads(body)["item"] == "classes[0].prototypes[0]"
    status, body = request(
        port, "POST", "/api/save", annotations(patch={"width": 48, "height": 48})
    )
    assert status == 400 and json.loads(body)["item"] == "patch"
    status, body = request(port, "POST", "/api/save", annotations(colour="red"))
    assert status == 400 and b"colour" in body
    status, _ = request(port, "POST", "/api/save", b"x", headers={"Content-Type": "text/plain"})
    assert status == 415
    assert not out.exists()
    status, body = request(port, "POST", "/api/save", annotations())
    assert status == 200, body
    assert json.loads(body) == {"saved": str(out), "classes": 1, "negatives": 1}
    # the file also says how the features the thresholds were chosen on were made
    made = {"channel_mode": "separate", "channel_weights": [0.5, 0.5]}
    assert read_annotations(out, SHAPES) == {**annotations(), **made}


def test_server_refuses_non_finite_numbers_huge_and_deep_bodies(api: tuple[int, Path]) -> None:
    """What a non-browser client could send: nothing reaches the annotations file, every
    refusal is a 4xx with a message (never a traceback)."""
    port, out = api
    before = out.read_bytes() if out.exists() else None
    valid = json.dumps(annotations())
    for bad in (
        valid.replace("0.9", "NaN"),
        valid.replace("0.9", "Infinity"),
        valid.replace("0.9", "1e999"),
    ):
        status, body = request(port, "POST", "/api/save", bad.encode())
        assert status == 400 and "not usable JSON" in json.loads(body)["error"], body
    status, body = request(port, "POST", "/api/save", b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and b"nested too deeply" in body
    status, body = request(port, "POST", "/api/save", b'{"x": "' + b"x" * (MAX_BODY + 1) + b'"}')
    assert status == 413 and b"at most" in body
    assert (out.read_bytes() if out.exists() else None) == before


def random_model(path: Path, classes: list[str]) -> Path:
    """A seeded, untrained SimSearch model file for 32 px patches of the two channels."""
    torch.manual_seed(0)
    spec = {"classes": classes, "in_channels": 2, "backbone": "resnet18", "projection": 128}
    net = SimSearchNet(classes, 2)
    models.save(path, net, "simsearch", spec, classes, {"patch": [32, 32], "input_size": 32})
    return path


def test_resume_with_model_detections(sheet: Path, tmp_path: Path) -> None:
    """An existing annotations file is resumed; a model adds detections that the page
    filters by confidence exactly as detect_image would, and Save keeps the confidence."""
    classes = ["disc", "background"]
    model_path = random_model(tmp_path / "model.pt", classes)
    out = tmp_path / "annotations.json"
    write_annotations(out, annotations())
    with running(sheet, out, model=str(model_path)) as port:
        info = json.loads(request(port, "GET", "/api/info")[1])
        assert info["annotations"] == annotations()
        assert info["patch"] == {"height": 32, "width": 32}  # features computed at start-up
        assert info["model"] == {"classes": ["disc"]}
        found = json.loads(request(port, "GET", "/api/detections")[1])
        assert found["classes"] == ["disc"] and found["stride"] == 8
        confidences = sorted(d["confidence"] for d in found["detections"])
        assert len(confidences) > 3 and all(d["class"] == "disc" for d in found["detections"])
        net, _ = models.load(model_path)
        image_set = load_image_set(sheet)
        for confidence in (confidences[0], confidences[len(confidences) // 2], confidences[-1]):
            expected = pd.concat(
                detect_image(
                    net,
                    image_set.images[name],
                    name,
                    classes,
                    (32, 32),
                    8,
                    {"disc": confidence},
                    input_size=32,
                )
                for name in DISCS
            )
            shown = [d for d in found["detections"] if d["confidence"] >= confidence]
            assert sorted((d["image"], d["x"], d["y"]) for d in shown) == sorted(
                zip(expected["image"], expected["x"], expected["y"], strict=True)
            )
        chosen = annotations()
        chosen["classes"][0]["confidence"] = 0.65
        status, body = request(port, "POST", "/api/save", chosen)
        assert status == 200, body
    assert read_annotations(out, SHAPES)["classes"][0]["confidence"] == 0.65


def test_annotate_command(sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "annotations.json")
    assert main(["annotate", str(sheet), "--out", out, "--displayed", "3"]) == 1
    assert "asks for 3 image(s); the sheet has 2" in capsys.readouterr().err
    assert main(["annotate", str(sheet), "--out", out, "--displayed", "a,c"]) == 1
    assert "unknown image(s) ['c']" in capsys.readouterr().err
    assert main(["annotate", str(sheet), "--out", out, "--channels", "dapi"]) == 1
    assert "unknown channel(s) ['dapi']" in capsys.readouterr().err
    missing = str(tmp_path / "nowhere" / "annotations.json")
    assert main(["annotate", str(sheet), "--out", missing]) == 1
    assert "does not exist" in capsys.readouterr().err
    model = str(tmp_path / "model.pt")
    assert main(["annotate", str(sheet), "--out", out, "--model", model]) == 1
    assert "model file not found" in capsys.readouterr().err


def test_annotate_command_serves_until_ctrl_c(sheet: Path, tmp_path: Path) -> None:
    """The command prints a 127.0.0.1 URL, answers there, and stops cleanly on SIGINT."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fishline.cli",
            "annotate",
            str(sheet),
            "--out",
            str(tmp_path / "a.json"),
            "--displayed",
            "a",
            "--no-browser",
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        status, body = request(int(match.group(1)), "GET", "/api/info")
        assert status == 200 and [d["name"] for d in json.loads(body)["displayed"]] == ["a"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_annotation_in_the_browser(sheet: Path, tmp_path: Path) -> None:
    """Create a class, draw two prototypes, lower the threshold, flag a negative and a
    background candidate, save; the file holds exactly what the page showed."""
    sync_playwright = browser_or_skip()
    out = tmp_path / "annotations.json"
    with running(sheet, out) as port, sync_playwright() as playwright:  # type: ignore[operator]
        # launch() always starts from a fresh temporary user-data dir
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#correlation td").count() == 4
        page.uncheck("input[data-channel='gfp']")  # channel toggle: the view shows dna only
        assert page.locator("img[alt='a']").get_attribute("src") == "/api/image/a?channels=dna"
        page.wait_for_function("document.querySelector(\"img[alt='a']\").complete")

        page.fill("#class-name", "disc")
        page.click("#add-class")
        page.wait_for_selector("#classes li[data-class='disc']")

        def drag(image: str, x0: float, y0: float, x1: float, y1: float) -> None:
            frame = page.locator(f"svg[data-image='{image}']").bounding_box()
            assert frame is not None
            scale = frame["width"] / SIZE
            page.mouse.move(frame["x"] + x0 * scale, frame["y"] + y0 * scale)
            page.mouse.down()
            page.mouse.move(frame["x"] + x1 * scale, frame["y"] + y1 * scale, steps=4)
            page.mouse.up()

        def zoom(image: str, button: str) -> int:
            page.click(f".view[data-image='{image}'] button[data-zoom='{button}']")
            return int(page.locator(f"img[alt='{image}']").get_attribute("width") or 0)

        assert page.locator("img[alt='a']").get_attribute("width") == str(3 * SIZE)
        drag("a", 24, 24, 56, 56)  # the first prototype fixes the 32 x 32 patch
        page.wait_for_selector("circle.proposal")
        assert zoom("b", "+") == 6 * SIZE
        drag("b", 25, 35, 75, 85)  # zoomed in, bigger: kept 32 x 32, centred on (50, 60)
        page.wait_for_function("document.querySelectorAll('rect.prototype').length === 2")
        # shift + drag pans a zoomed image and draws nothing; 1:1 is native resolution
        assert zoom("a", "+") == zoom("a", "+") // 2 == 6 * SIZE
        viewport = page.locator(".view[data-image='a'] .viewport")
        frame = viewport.bounding_box()
        assert frame is not None
        start = viewport.evaluate("v => [v.scrollLeft, v.scrollTop]")
        page.keyboard.down("Shift")
        page.mouse.move(frame["x"] + 400, frame["y"] + 400)
        page.mouse.down()
        page.mouse.move(frame["x"] + 300, frame["y"] + 320, steps=4)
        page.mouse.up()
        page.keyboard.up("Shift")
        assert viewport.evaluate("v => [v.scrollLeft, v.scrollTop]") == [
            start[0] + 100,
            start[1] + 80,
        ]
        assert page.locator("rect.prototype").count() == 2
        assert zoom("a", "1:1") == SIZE

        slider = page.locator("#threshold")
        slider.focus()
        shown = "#images[data-shown-threshold='{}']"
        for _ in range(40):
            for _ in range(5):
                page.keyboard.press("ArrowLeft")
            value = slider.input_value()
            page.wait_for_selector(shown.format(value), state="attached")
            if page.locator("circle.proposal").count() >= 6:
                break
        threshold = float(value)
        assert threshold < 0.8
        assert page.locator("circle.proposal").count() >= 6

        circles = page.locator("circle.proposal")
        negative = circles.nth(circles.count() - 1)
        flagged = negative.evaluate(
            "c => ({image: c.ownerSVGElement.dataset.image, x: Number(c.dataset.x),"
            " y: Number(c.dataset.y)})"
        )
        negative.click()
        page.wait_for_selector("circle.proposal.negative")
        proposals = circles.count()

        page.fill("#bg-count", "3")
        page.click("#background")
        page.wait_for_selector("rect.bg.easy")
        squares = page.locator("rect.bg")
        assert squares.count() == 6
        not_background = squares.first.evaluate(
            "r => ({image: r.ownerSVGElement.dataset.image, x: Number(r.dataset.x),"
            " y: Number(r.dataset.y)})"
        )
        squares.first.click()
        page.wait_for_selector("rect.bg.not-background")

        assert page.inner_text("#channel-weights") == "Channel weights: dna 0.50, gfp 0.50"
        page.click("#save")
        page.wait_for_selector("#status:has-text('Saved')")
        # weights learned from the prototypes and the flagged negative; searches follow them
        page.click("#learn-weights")
        page.wait_for_selector("#status:has-text('Weights learned')")
        assert re.fullmatch(
            r"Channel weights: dna 0\.\d\d, gfp 0\.\d\d", page.inner_text("#channel-weights")
        )
        browser.close()

    saved = read_annotations(out, SHAPES)
    assert saved["patch"] == {"height": 32, "width": 32}
    assert saved["stride"] == pytest.approx(3.2)
    assert saved["displayed"] == ["a", "b"]
    assert saved["channel_weights"] == [0.5, 0.5]  # saved before the weights were learned
    (entry,) = saved["classes"]
    assert entry["name"] == "disc"
    assert entry["prototypes"] == [box("a", 40, 40), box("b", 50, 60)]
    assert entry["threshold"] == threshold
    assert [(p["image"], p["x"], p["y"]) for p in entry["negatives"]] == [
        (flagged["image"], flagged["x"], flagged["y"])
    ]
    assert entry["negatives"][0]["score"] >= threshold
    positives = {(p["image"], p["x"], p["y"]) for p in entry["positives"]}
    assert len(positives) == proposals - 1
    assert (flagged["image"], flagged["x"], flagged["y"]) not in positives
    assert all(p["score"] >= threshold for p in entry["positives"])
    background = saved["background"]
    assert len(background["proposed"]) == 6
    assert [(p["image"], p["x"], p["y"]) for p in background["not_background"]] == [
        (not_background["image"], not_background["x"], not_background["y"])
    ]


def test_resume_and_confidence_in_the_browser(sheet: Path, tmp_path: Path) -> None:
    """A resumed file shows its marks; the confidence slider filters the model's detections
    and its value is saved as the class's confidence, the marks unchanged."""
    sync_playwright = browser_or_skip()
    model = random_model(tmp_path / "model.pt", ["disc", "background"])
    out = tmp_path / "annotations.json"
    write_annotations(out, annotations())
    with running(sheet, out, model=str(model)) as port, sync_playwright() as playwright:  # type: ignore[operator]
        found = json.loads(request(port, "GET", "/api/detections")[1])["detections"]
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("rect.prototype[data-class='disc']").count() == 1
        assert page.locator("circle.proposal.negative").count() == 1
        assert page.locator("rect.bg.saved").count() == 1
        slider = page.locator("#confidence-disc")
        slider.focus()
        page.keyboard.press("Home")
        steps = int(100 * float(np.median([d["confidence"] for d in found])))
        for _ in range(steps):
            page.keyboard.press("ArrowRight")
        value = float(slider.input_value())
        assert value == pytest.approx(steps / 100)
        expected = sum(d["confidence"] >= value for d in found)
        assert 0 < expected < len(found)
        assert page.locator("rect.detection").count() == expected
        page.click("#save")
        page.wait_for_selector("#status:has-text('Saved')")
        written = out.read_bytes()
        # without prototypes the class cannot be saved: the page shows the server's reason
        page.click("#remove-prototype")
        page.wait_for_selector("rect.prototype", state="detached")
        assert page.locator("circle.proposal:not(.negative)").count() == 0
        page.click("#save")
        page.wait_for_selector("#status.error:has-text('classes[0].prototypes')")
        assert out.read_bytes() == written
        browser.close()
    saved = read_annotations(out, SHAPES)
    before = annotations()
    (entry,) = saved["classes"]
    assert entry.pop("confidence") == value
    # positives are the proposals searched again at the saved threshold
    assert entry.pop("positives") and before["classes"][0].pop("positives")
    assert entry == before["classes"][0]
    for name in ("displayed", "patch", "stride", "background", "channels"):
        assert saved[name] == before[name]
