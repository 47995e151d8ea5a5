"""A real browser in the reverse view: `python app.py` opened in the system's headless Chromium (Playwright).

Presses Generate and watches the x_t grid change frame by frame until the run is done (x̂₀ beside it, the GIF
and the downloads after it), then starts a 1000-step DDPM run and stops it; two visitors share the one run
slot and the second stops its run while it waits its turn; classifier guidance s is set and stated, and the step
slider goes back through a finished run. Screenshots go to test-artifacts/. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

import io
import urllib.request

import numpy as np
from PIL import Image

WATCH = """() => {  // every src the x_t grid shows, in order
    window.reverseSources = [];
    const seen = () => {
        const img = document.querySelector('#reverse-xt img');
        const src = img && img.getAttribute('src');
        if (src && window.reverseSources.at(-1) !== src) window.reverseSources.push(src);
    };
    new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                       attributeFilter: ['src']});
}"""
STATUS = "text => document.querySelector('#reverse-status').innerText.includes(text)"


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def open_advanced(page) -> None:
    """Open the reverse view's "Advanced" accordion (seed, images, noise options)."""
    page.locator("#reverse-advanced").get_by_text("Advanced").click()
    page.wait_for_selector("#reverse-n input", state="visible", timeout=10_000)


def open_tab(browser, url: str, tab: str, ready: str, height: int = 1100):
    """A new visitor (page, 1400 px wide, `height` tall) on the app's tab `tab`, once `ready` (a CSS selector)
    shows; with the list that collects the page's JavaScript errors."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.get_by_role("tab", name=tab).click()
    page.wait_for_selector(ready, timeout=60_000)
    return page, errors


def test_generate_streams_the_grid_and_stop_ends_a_run(browser, app_process_url, artifacts):
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    set_number(page, "reverse-steps", 12)
    open_advanced(page)
    set_number(page, "reverse-n", 9)
    page.evaluate(WATCH)

    page.locator("#reverse-generate").click()
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    page.wait_for_selector("#reverse-gif img", timeout=20_000)
    sources = page.evaluate("window.reverseSources")
    assert len(sources) >= 3, sources  # x_T, frames in between, x_0: the grid changed as the run streamed
    assert page.locator("#reverse-x0 img").count() == 1
    assert "12 model calls" in page.locator("#reverse-status").inner_text()
    downloads = page.locator("#reverse-downloads").inner_text().replace("\n", "")  # "samples\n.png\n9 KB"
    assert "samples.png" in downloads and "trajectory.gif" in downloads
    page.screenshot(path=artifacts / "reverse-after-generate.png", full_page=True)

    page.locator("#reverse-method").get_by_text("DDPM").click()
    set_number(page, "reverse-steps", 1000)
    set_number(page, "reverse-n", 4)
    page.locator("#reverse-generate").click()
    page.wait_for_function(STATUS, arg="of 1000", timeout=120_000)
    page.locator("#reverse-stop").click()
    page.wait_for_function(STATUS, arg="Stopped", timeout=30_000)
    stopped = page.locator("#reverse-status").inner_text()
    assert "of 1000" in stopped
    page.wait_for_timeout(1500)  # nothing comes after it
    assert page.locator("#reverse-status").inner_text() == stopped
    page.screenshot(path=artifacts / "reverse-after-stop.png", full_page=True)
    assert not errors, errors


def test_a_stop_reaches_a_run_still_waiting_its_turn(browser, app_process_url, artifacts):
    """Two visitors: the first's long run holds the one slot; the second presses Generate (queued) then Stop.
    The second run ends before it starts, saying so; the first runs on untouched."""
    (first, errors), (second, more) = (open_tab(browser, app_process_url, "Reverse process",
                                                "#reverse-sigmas .js-plotly-plot") for _ in range(2))
    first.locator("#reverse-method").get_by_text("DDPM").click()
    set_number(first, "reverse-steps", 1000)
    first.locator("#reverse-generate").click()
    first.wait_for_function(STATUS, arg="of 1000", timeout=120_000)
    second.locator("#reverse-generate").click()
    second.wait_for_timeout(1000)  # queued behind the first run
    assert "Step" not in second.locator("#reverse-status").inner_text()
    second.locator("#reverse-stop").click()
    second.wait_for_function(STATUS, arg="Stopped before it started", timeout=30_000)
    assert "Stopped" not in first.locator("#reverse-status").inner_text()  # another session's Stop
    first.locator("#reverse-stop").click()  # frees the slot: the second run's turn comes and ends at once
    first.wait_for_function(STATUS, arg="Stopped after step", timeout=30_000)
    second.wait_for_timeout(1500)
    assert second.locator("#reverse-status").inner_text() == "Stopped before it started."
    assert second.locator("#reverse-xt img").count() == 0  # it drew nothing, not even x_T
    second.screenshot(path=artifacts / "reverse-stopped-while-waiting.png", full_page=True)
    assert not errors + more, errors + more


LINES = """sel => [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null).map(e => {
    const r = e.getBoundingClientRect(), lh = parseFloat(getComputedStyle(e).lineHeight);
    return [e.textContent.trim(), Math.round(r.height / lh)]; })"""  # each visible label: (text, lines it takes)
BOTTOM = "sel => document.querySelector(sel).getBoundingClientRect().bottom"


def test_generate_and_the_essentials_are_in_the_first_screen(browser, app_process_url, artifacts):
    """At 1400 x 1000 a visitor sees Generate and the essential controls without scrolling; spacing, the DDIM /
    DDPM noise, seed, images and clipping wait behind a closed "Advanced" accordion; no label wraps in its box."""
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot",
                            height=1000)
    for elem_id in ("reverse-generate", "reverse-stop", "reverse-checkpoint", "reverse-method", "reverse-steps",
                    "reverse-class", "reverse-guidance", "reverse-classifier"):
        assert page.locator(f"#{elem_id}").is_visible(), elem_id
        assert page.evaluate(BOTTOM, f"#{elem_id}") <= 1000, elem_id
    hidden = ("reverse-eta", "reverse-spacing", "reverse-seed", "reverse-n", "reverse-clip")
    assert not any(page.locator(f"#{elem_id}").is_visible() for elem_id in hidden)
    page.screenshot(path=artifacts / "reverse-first-screen.png")
    open_advanced(page)
    assert all(page.locator(f"#{elem_id}").is_visible() for elem_id in hidden)
    labels = page.evaluate(LINES, "[id^=reverse-] [data-testid=block-info]")
    assert len(labels) >= 8 and all(lines == 1 for _, lines in labels), labels
    assert not errors, errors


def caption_bands(pixels: np.ndarray) -> list[tuple[int, int]]:
    """(first row, height) of each band of rows that reads as a caption strip: rows largely white, with dark text
    somewhere in the band (the white gaps between images alone have none)."""
    white = [(row == 255).mean() > 0.3 for row in pixels]
    bands, start = [], None
    for i, light in enumerate([*white, False]):
        if light and start is None:
            start = i
        elif not light and start is not None:
            if (pixels[start:i] < 100).any():
                bands.append((start, i - start))
            start = None
    return bands


def test_the_sample_grid_names_each_images_class(browser, app_process_url, artifacts):
    """After a run of the class-conditional checkpoint, every row of the x_t and x̂₀ grids has a strip of class
    names under it, tall enough on screen to read from the back of a room."""
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    set_number(page, "reverse-steps", 4)
    page.locator("#reverse-generate").click()
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    for elem_id in ("reverse-xt", "reverse-x0"):
        img = page.locator(f"#{elem_id} img")
        with urllib.request.urlopen(img.get_attribute("src"), timeout=30) as response:
            pixels = np.asarray(Image.open(io.BytesIO(response.read())).convert("L"))
        bands = caption_bands(pixels)
        assert len(bands) == 4, bands  # 16 images, 4 rows, a strip under each
        on_screen = img.bounding_box()["height"] / pixels.shape[0]
        assert min(height for _, height in bands) * on_screen >= 12, (bands, on_screen)
    page.locator("#reverse-xt").screenshot(path=artifacts / "reverse-captioned-grid.png")
    assert not errors, errors


def test_a_sigma_of_zero_says_what_it_means(browser, app_process_url):
    """The default sampler, DDIM with eta = 0, adds no fresh noise: its sigma line lies on 0, and the plot says
    so instead of looking empty; with eta = 1 the note goes."""
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    note = page.locator("#reverse-sigmas .annotation-text", has_text="σ = 0 on every step")
    assert note.is_visible() and "deterministic, no fresh noise" in note.text_content()
    plot = page.locator("#reverse-sigmas .nsewdrag").bounding_box()  # the plot area
    line = page.locator("#reverse-sigmas .scatterlayer .trace .js-line").last.bounding_box()  # the run's sigma
    assert line["height"] <= 2 and line["y"] + line["height"] < plot["y"] + plot["height"] - 4  # flat, above the axis
    open_advanced(page)
    set_number(page, "reverse-eta", 1)
    page.wait_for_function("() => !document.querySelector('#reverse-sigmas').innerText.includes('σ = 0')",
                           timeout=20_000)
    assert not errors, errors


OVERLAP = """id => {  // the picture's label and the picture: do their boxes meet?
    const a = document.querySelector(`#${id} [data-testid=block-label]`).getBoundingClientRect();
    const b = document.querySelector(`#${id} img`).getBoundingClientRect();
    return b.width > 0 && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom; }"""


def test_picture_labels_sit_above_their_pictures(browser, app_process_url):
    """After a run, the labels of the GIF and of the grids are above their pictures, not over them."""
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    set_number(page, "reverse-steps", 3)
    page.locator("#reverse-generate").click()
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    page.wait_for_selector("#reverse-gif img", timeout=20_000)
    for elem_id in ("reverse-gif", "reverse-xt", "reverse-x0"):
        assert page.evaluate(OVERLAP, elem_id) is False, elem_id
    assert not errors, errors


SRC = "sel => { const img = document.querySelector(sel + ' img'); return img && img.getAttribute('src'); }"
NUMBERS = "text => document.querySelector('#reverse-scrub-info').innerText.includes(text)"
CHANGED = """([sel, old]) => {  // the picture's src is set and is no longer `old`
    const img = document.querySelector(sel + ' img');
    return Boolean(img && img.src) && img.getAttribute('src') !== old; }"""


def test_classifier_guidance_and_the_step_slider_after_a_run(browser, app_process_url, artifacts):
    """Set classifier guidance s beside classifier-free w, Generate: the status names both. Then the step slider
    goes back through the run: x_t, x̂₀, the step's update and its numbers change with it (no new run). A checkpoint
    on another schedule hides s and says why."""
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    assert "Classifier-free w" in page.locator("#reverse-guidance").inner_text()
    assert "Classifier s" in page.locator("#reverse-classifier").inner_text()
    set_number(page, "reverse-steps", 4)
    set_number(page, "reverse-classifier", 5)
    page.locator("#reverse-generate").click()
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    assert "classifier-free w = 1, classifier s = 5" in page.locator("#reverse-status").inner_text()
    page.wait_for_selector("#reverse-scrub input[type=number]:not([disabled])", timeout=20_000)
    shown = {4: page.evaluate(SRC, "#reverse-xt")}
    for step in (1, 3, 0):
        set_number(page, "reverse-scrub", step)
        page.wait_for_function(NUMBERS, arg=f"Step {step} of 4" if step else "x_T at t = 1000", timeout=20_000)
        page.wait_for_function(CHANGED, arg=["#reverse-xt", list(shown.values())[-1]], timeout=20_000)
        shown[step] = page.evaluate(SRC, "#reverse-xt")
        if step == 3:
            assert page.locator("#reverse-update img").is_visible() and page.locator("#reverse-x0 img").count() == 1
            assert "RMS per pixel" in page.locator("#reverse-scrub-info").inner_text()
            page.screenshot(path=artifacts / "reverse-step-slider.png", full_page=True)
    assert len(set(shown.values())) == 4  # x_0, steps 1 and 3, x_T: four different pictures
    assert "Done" in page.locator("#reverse-status").inner_text()  # scrubbing started no run

    page.locator("#reverse-checkpoint input").click()
    page.get_by_role("option", name="fashion_eps_linear.safetensors").click()
    page.wait_for_function("() => document.querySelector('#reverse-info').innerText.includes('unavailable here')",
                           timeout=20_000)
    assert not page.locator("#reverse-classifier").is_visible()
    assert "linear schedule with T = 1000" in page.locator("#reverse-info").inner_text()
    assert not errors, errors
