"""The page's editing tools in headless Chromium (no propagation): polygon, fill, eraser,
undo/redo, keyboard shortcuts, label PNG import, objects, help panel, and no edit while a
frame is still loading. Each check reads the saved annotation back through the API."""
import os

import numpy as np

from app_support import png_bytes
from test_app_browser import CHROMIUM, _need_browser, server  # noqa: F401  (the server fixture)

H, W = 120, 216


def _mask(page, t):
    """Frame t's saved label map, fetched by the page itself."""
    data = page.evaluate(f"""async () => {{
        const r = await fetch(`/api/sessions/${{afb.session.id}}/masks/{t}?format=raw`);
        return Array.from(new Uint8Array(await r.arrayBuffer())); }}""")
    return np.array(data, np.uint8).reshape(H, W)


def _saved(page):
    """Save the page's pending edits now and wait for the save queue (``flushSave`` returns it)."""
    page.evaluate("afb.flushSave()")


def _step_while_opening(page):
    """Open the demo and press ArrowRight while the page is still opening it (its list refresh
    held back): the step to frame 1 must survive the open (it once went back to frame 0)."""
    page.wait_for_selector("#open-demo", state="visible")
    held = []
    page.route("**/api/videos", lambda route: held.append(route) if route.request.method == "GET"
               else route.continue_())
    page.click("#open-demo")
    page.wait_for_selector("#objects li[data-object='1']")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("afb.t === 1")
    assert len(held) == 1, "the open did not wait on the held list refresh"
    with page.expect_request("**/events?*"):   # the open goes on to its last step
        held[0].continue_()
    page.unroute("**/api/videos")


def test_editing_tools(server, tmp_path):  # noqa: F811
    _need_browser()
    from playwright.sync_api import sync_playwright
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.set_default_timeout(120_000)  # a loaded 2-core CI machine can be slow
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        _step_while_opening(page)
        page.wait_for_function("afb.t === 1 && afb.frameReady")
        assert page.inner_text("#frame-label").startswith("Frame 2 / ")
        if os.environ.get("AFB_APP_SCREENS"):
            page.screenshot(path=os.path.join(os.environ["AFB_APP_SCREENS"], "app_step_while_opening.png"))
        view = page.evaluate("(() => { const r = afb.view.canvas.getBoundingClientRect();"
                             " return [r.left + afb.view.ox, r.top + afb.view.oy, afb.view.scale]; })()")

        def at(x, y):
            return view[0] + x * view[2], view[1] + y * view[2]

        # polygon: a 40 x 30 rectangle from (20, 20), closed with Enter
        page.keyboard.press("p")
        for x, y in ((20, 20), (60, 20), (60, 50), (20, 50)):
            page.mouse.click(*at(x, y))
        page.keyboard.press("Enter")
        _saved(page)
        m = _mask(page, 1)
        assert (m[22:48, 22:58] == 1).all() and m[60:, :].max() == 0 and abs(int((m == 1).sum()) - 1200) < 90
        # a second object (N) fills the background region around it
        page.keyboard.press("n")
        page.wait_for_selector("#objects li[data-object='2']")
        page.keyboard.press("f")
        page.mouse.click(*at(150, 100))
        _saved(page)
        m = _mask(page, 1)
        assert (m == 1).sum() > 1100 and (m == 2).sum() == H * W - (m == 1).sum()
        # undo the fill, redo it, undo again
        page.keyboard.press("Control+z")
        _saved(page)
        assert _mask(page, 1).max() == 1
        page.keyboard.press("Control+Shift+z")
        _saved(page)
        assert (_mask(page, 1) == 2).any()
        page.keyboard.press("Control+z")
        _saved(page)
        # eraser through the middle of the rectangle
        page.keyboard.press("e")
        page.fill("#brush-size", "6")
        page.mouse.move(*at(10, 35))
        page.mouse.down()
        page.mouse.move(*at(70, 35))
        page.mouse.up()
        _saved(page)
        m = _mask(page, 1)
        assert m[33:37, 22:58].max() == 0 and (m[22:30, 22:58] == 1).all()
        # import a label PNG into frame 2
        labels = np.zeros((H, W), np.uint8)
        labels[70:100, 100:150] = 3
        path = tmp_path / "label.png"
        path.write_bytes(png_bytes(labels))
        page.keyboard.press("ArrowRight")
        page.wait_for_function("afb.t === 2 && afb.frameReady")
        page.set_input_files("#import-png", str(path))
        page.wait_for_selector("#objects li[data-object='3']")
        assert np.array_equal(_mask(page, 2), labels)
        # rename and delete an object
        page.fill("#objects li[data-object='3'] .name", "ball")
        page.keyboard.press("Enter")
        page.wait_for_function("afb.session.objects.some(o => o.name === 'ball')")
        page.once("dialog", lambda d: d.accept())
        page.click("#objects li[data-object='3'] .del")
        page.wait_for_function("!afb.session.objects.some(o => o.id === 3)")
        assert _mask(page, 2).max() == 0
        # playback (Space) runs through the frames and stops
        page.keyboard.press("Space")
        page.wait_for_function("afb.t >= 6", timeout=120_000)
        page.keyboard.press("Space")
        assert page.evaluate("afb.playing") is False
        # overlay toggle, help panel, wrong-size import refused with a message
        page.keyboard.press("o")
        assert page.evaluate("afb.view.overlayOn") is False
        page.keyboard.press("?")
        assert page.is_visible("#help")
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")
        path.write_bytes(png_bytes(np.ones((H, W - 1), np.uint8)))
        page.keyboard.press("Home")
        page.wait_for_function("afb.t === 0 && afb.frameReady")
        page.set_input_files("#import-png", str(path))
        page.wait_for_selector("#toast.error")
        assert "120x215 but the frames are 120x216" in page.inner_text("#toast")
        if os.environ.get("AFB_APP_SCREENS"):
            page.keyboard.press("o")
            page.keyboard.press("?")
            page.screenshot(path=os.path.join(os.environ["AFB_APP_SCREENS"], "app_help.png"))
        browser.close()
    assert not errors, errors


def test_a_frame_still_loading_is_not_edited(server):  # noqa: F811
    _need_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.set_default_timeout(120_000)
        page.goto(server)
        page.click("#open-demo")
        page.wait_for_selector("#objects li[data-object='1']")
        page.wait_for_function("afb.t === 0 && afb.frameReady")
        held = []
        page.route("**/frames/39", lambda route: held.append(route))  # the last frame's image waits
        with page.expect_request("**/frames/39"):
            page.keyboard.press("End")
        page.wait_for_function("afb.t === 39")
        assert page.evaluate("afb.frameReady") is False
        box = page.evaluate("(() => { const r = afb.view.canvas.getBoundingClientRect();"
                            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        page.keyboard.press("b")
        page.mouse.move(*box)
        page.mouse.down()
        page.mouse.up()
        assert "frame 40 is still loading" in page.inner_text("#toast")
        if os.environ.get("AFB_APP_SCREENS"):
            page.screenshot(path=os.path.join(os.environ["AFB_APP_SCREENS"], "app_frame_loading.png"))
        assert page.evaluate("afb.dirty") is False
        for _ in range(100):  # each round trip lets the route handler run
            if held:
                break
            page.evaluate("0")
        held[0].continue_()
        page.wait_for_function("afb.frameReady")
        page.evaluate("afb.flushSave()")
        assert _mask(page, 39).max() == 0 and _mask(page, 0).max() == 0  # no edit landed anywhere
        assert page.evaluate("afb.session.annotated") == []
        browser.close()


def test_text_box_makes_an_object_from_a_sentence(server):  # noqa: F811
    """Type a sentence on frame 0 of the demo: a new object, annotated where the light referring
    model finds it (the demo's ellipse), named by the sentence, and an empty box is refused."""
    _need_browser()
    from playwright.sync_api import sync_playwright
    from afb_urr.data.synthetic import DEMO_SEED, render_video
    from afb_urr.evaluation.metrics import j_measure
    _, truth = render_video(DEMO_SEED, num_frames=1, size=(H, W), num_objects=2)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.set_default_timeout(120_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.click("#open-demo")
        page.wait_for_function("afb.frameReady && !document.querySelector('#text-input').disabled")
        page.click("#text-find")
        page.wait_for_selector("#toast.error")
        assert "type a sentence" in page.inner_text("#toast")
        page.fill("#text-input", "the ellipse")
        page.keyboard.press("e")  # typed into the box, not the eraser shortcut
        assert page.input_value("#text-input") == "the ellipsee" and afb_tool(page) == "brush"
        page.fill("#text-input", "the ellipse")
        page.press("#text-input", "Enter")
        page.wait_for_function("afb.session.annotated.includes(0) && afb.frameReady"
                               " && document.querySelector('#text-status').textContent.includes('object')")
        status = page.inner_text("#text-status")
        assert status.startswith("the ellipse: object 2,"), status
        assert page.evaluate("afb.activeObject") == 2 and page.input_value("#text-input") == ""
        assert page.eval_on_selector("#objects li[data-object='2'] .name", "e => e.value") == "the ellipse"
        labels = _mask(page, 0)
        assert j_measure(truth[0] == 2, labels == 2) >= 0.8 and set(np.unique(labels)) <= {0, 2}
        if os.environ.get("AFB_APP_SCREENS"):
            page.screenshot(path=os.path.join(os.environ["AFB_APP_SCREENS"], "app_text.png"))
        page.click("#undo")  # as any edit: frame 0 was not annotated before the sentence, nor is it now
        _saved(page)
        assert page.evaluate("afb.session.annotated.includes(0)") is False
        browser.close()
    assert not errors, errors


def afb_tool(page):
    return page.evaluate("afb.tool")
