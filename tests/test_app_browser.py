"""The page in a real browser (headless Chromium) against `tools/app.py` on 127.0.0.1:
open the demo video, paint both objects on frame 0 with the brush following their true shapes,
propagate, wait for the timeline to fill, export the PNG masks and score them against the truth.

Screenshots before and after propagation are saved in the test's tmp folder, and copied to
$AFB_APP_SCREENS when that is set. Without Chromium the test is skipped, except under CI
(the CI variable set), where it fails: CI must run it (Debian packages chromium, chromium-driver).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import cv2
import numpy as np
import pytest

from afb_urr.data.synthetic import DEMO_SEED, render_video
from afb_urr.io import read_mask
from app_support import mean_j
from conftest import ROOT

BRUSH = 4  # brush diameter in frame pixels
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and os.path.isfile(p)), None)


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright (pip install playwright)"
    else:
        missing = None if CHROMIUM else "chromium (apt-get install chromium chromium-driver)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI, but {missing} is missing")
        pytest.skip(f"{missing} is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    """`python tools/app.py` (demo weights) on a free port; yields its URL."""
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1",  # the checkout's package, installed or not
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "app.py"), "--work",
                             str(tmp_path / "work"), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "api/info", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("the app did not start: " + proc.stdout.read())
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def strokes(mask: np.ndarray, radius: float):
    """Horizontal brush strokes (x0, x1, y) in frame pixels that paint ``mask`` with a round brush
    of ``radius``: the rows of the mask eroded by the radius, two pixels apart."""
    k = int(np.ceil(radius))
    inner = cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k - 1, 2 * k - 1)))
    out = []
    for y in range(0, mask.shape[0], 2):
        row = np.flatnonzero(np.diff(np.concatenate([[0], inner[y], [0]])))
        out += [(int(a), int(b) - 1, y) for a, b in zip(row[::2], row[1::2])]
    return out


def paint(page, truth0, objects):
    """Select each object in the panel and paint its true shape on the canvas with the mouse."""
    view = page.evaluate("(() => { const r = afb.view.canvas.getBoundingClientRect();"
                         " return {left: r.left, top: r.top, ox: afb.view.ox, oy: afb.view.oy,"
                         " scale: afb.view.scale}; })()")

    def client(x, y):
        return view["left"] + view["ox"] + (x + 0.5) * view["scale"], \
            view["top"] + view["oy"] + (y + 0.5) * view["scale"]

    for obj in objects:
        page.click(f"#objects li[data-object='{obj}']")
        for x0, x1, y in strokes(truth0 == obj, BRUSH / 2):
            page.mouse.move(*client(x0, y))
            page.mouse.down()
            page.mouse.move(*client(x1, y))
            page.mouse.up()


def test_paint_propagate_export_in_chromium(server, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright
    frames, truth = render_video(DEMO_SEED, num_frames=40, size=(120, 216), num_objects=2)
    shots = tmp_path / "screens"
    shots.mkdir()
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820}, accept_downloads=True)
        page.set_default_timeout(120_000)  # a loaded 2-core CI machine can be slow
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.click("#open-demo")
        page.wait_for_selector("#objects li[data-object='1']")
        page.click("#add-object")
        page.wait_for_selector("#objects li[data-object='2']")
        page.wait_for_function("afb.frameReady")
        page.fill("#brush-size", str(BRUSH))
        paint(page, truth[0], (1, 2))
        page.evaluate("afb.flushSave()")  # save the strokes now and wait for the save queue
        page.wait_for_function("afb.session.annotated.includes(0) && !afb.dirty", timeout=60_000)
        page.screenshot(path=str(shots / "app_before_propagation.png"))
        page.click("[data-propagate='both']")
        page.wait_for_function("afb.session.job && afb.session.job.state === 'done'"
                               " && afb.session.done.length === 40", timeout=600_000, polling=500)
        page.click("#timeline", position={"x": page.eval_on_selector("#timeline", "e => e.clientWidth") * 0.55,
                                          "y": 20})
        page.wait_for_function("afb.t > 0 && afb.frameReady")
        page.screenshot(path=str(shots / "app_after_propagation.png"))
        here = page.evaluate("afb.t")
        page.keyboard.press("u")  # next uncertain frame: one of the server's suggestions
        page.wait_for_function(f"afb.t !== {here}")
        suggested = page.evaluate("fetch(`/api/sessions/${afb.session.id}/suggest?k=10`).then(r => r.json())")
        assert page.evaluate("afb.t") in suggested
        with page.expect_download(timeout=120_000) as download:
            page.click("[data-export='palette']")
        download.value.save_as(str(tmp_path / "masks.zip"))
        browser.close()
    assert not errors, errors
    with zipfile.ZipFile(tmp_path / "masks.zip") as z:
        z.extractall(tmp_path / "export")
    pred = {t: read_mask(str(tmp_path / "export" / "masks" / f"{t:05d}.png")) for t in range(40)}
    painted = mean_j(pred, truth, [0])
    score = mean_j(pred, truth, range(1, 40))
    target = os.environ.get("AFB_APP_SCREENS")
    if target:
        os.makedirs(target, exist_ok=True)
        for f in shots.iterdir():
            shutil.copy(f, target)
    print(f"painted frame 0: J {painted:.3f}; propagated frames 1..39: mean J {score:.3f}")
    assert painted >= 0.85
    assert score >= 0.8
