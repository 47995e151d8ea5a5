"""A real browser: `python app.py` on a free port, opened in the system's headless Chromium through Playwright.

Moves the t slider with the mouse and checks that the pictures and the plots change, plays and pauses, and
saves screenshots under test-artifacts/. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

PLOT_DATA = "id => JSON.stringify(document.querySelector(`#${id} .js-plotly-plot`).data)"  # traces as drawn
SRC = "id => document.querySelector(`#${id} img`)?.src"


def state(page) -> dict:
    return {
        "t": page.locator("#forward-t input[type=number]").input_value(),
        "x_t": page.evaluate(SRC, "forward-xt"),
        "chain": page.evaluate(SRC, "forward-chain"),
        "curves": page.evaluate(PLOT_DATA, "forward-curves"),
        "spectrum": page.evaluate(PLOT_DATA, "forward-spectrum"),
        "histogram": page.evaluate(PLOT_DATA, "forward-histogram"),
        "text": page.locator("#forward-text-images").inner_text(),
    }


def test_slider_moves_the_pictures_and_plots(browser, app_process_url, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_process_url)
    page.wait_for_selector("#forward-xt img", timeout=60_000)
    page.wait_for_selector("#forward-histogram .js-plotly-plot", timeout=30_000)
    before = state(page)
    assert before["t"] == "250" and "t = 250 of T = 1000" in before["text"]

    slider = page.locator("#forward-t input[type=range]")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.25 * box["width"], y)
    page.mouse.down()
    for fraction in (0.35, 0.45, 0.55, 0.6):  # a drag: several input events, the last one must win
        page.mouse.move(box["x"] + fraction * box["width"], y, steps=3)
    page.mouse.up()
    page.wait_for_function("t => document.querySelector('#forward-text-images').innerText.includes(t)",
                           arg=f"t = {page.locator('#forward-t input[type=number]').input_value()} of",
                           timeout=20_000)
    after = state(page)
    assert int(after["t"]) > 500
    assert f"t = {after['t']} of T = 1000" in after["text"]
    for key in ("x_t", "chain", "curves", "spectrum", "histogram"):
        assert after[key] != before[key], key
    page.screenshot(path=artifacts / "forward-after-slider.png", full_page=True)

    page.locator("#forward-play").click()
    page.wait_for_function("t => +document.querySelector('#forward-t input[type=number]').value > t",
                           arg=int(after["t"]) + 20, timeout=20_000)
    page.locator("#forward-play").click()
    page.wait_for_function("() => document.querySelector('#forward-play').innerText.includes('Play')",
                           timeout=10_000)
    page.wait_for_timeout(1000)  # a tick already running when pause was clicked may still land
    paused = page.locator("#forward-t input[type=number]").input_value()
    page.wait_for_timeout(600)  # four tick intervals: nothing moves once paused
    assert page.locator("#forward-t input[type=number]").input_value() == paused
    page.screenshot(path=artifacts / "forward-after-play.png", full_page=True)
    assert not errors, errors


def test_the_spectrum_axis_reads_in_order(browser, app_process_url):
    """The spectrum's log frequency axis carries written-out ticks that increase left to right (Plotly's minor
    labels read "5, 0.1, 2, 5" before)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_process_url)
    page.wait_for_selector("#forward-spectrum .xtick text", timeout=60_000)
    labels = page.evaluate("() => [...document.querySelectorAll('#forward-spectrum .xtick text')]"
                           ".map(t => [t.getBoundingClientRect().x, t.textContent])")
    ordered = [float(text) for _, text in sorted(labels)]
    assert len(ordered) >= 3 and ordered == sorted(ordered) and len(set(ordered)) == len(ordered), labels


INSIDE = """id => {  // each drawn curve's box against the plot area's (both axes share it)
    const area = document.querySelector(`#${id} .nsewdrag`).getBoundingClientRect();
    return [...document.querySelectorAll(`#${id} .scatterlayer .trace .js-line`)].map(line => {
        const r = line.getBoundingClientRect();
        return r.top >= area.top - 2 && r.bottom <= area.bottom + 2; }); }"""
SIZES = "sel => [...document.querySelectorAll(sel)].map(e => parseFloat(getComputedStyle(e).fontSize))"
PROSE = """sel => [...document.querySelectorAll(`${sel} p`)].map(p => {  // the words, formulas left out
    const words = p.cloneNode(true);
    words.querySelectorAll('.katex').forEach(k => k.remove());
    return words.textContent; }).join(' ').trim().length"""


def test_the_snr_stays_on_its_own_axis_and_the_texts_name_their_equations(browser, app_process_url):
    """The SNR (about 10^4 down to 0) is drawn on a log axis of its own, inside the plot, not off the top of the
    0-1 axis; the texts cite the paper's equations by name, not the project's seed notes."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_process_url)
    page.wait_for_selector("#forward-curves .js-plotly-plot .js-line", timeout=60_000)
    inside = page.evaluate(INSIDE, "forward-curves")
    assert len(inside) >= 8 and all(inside), inside
    assert "SNR" in page.locator("#forward-curves .g-y2title").text_content()
    texts = page.locator("#forward-text-images").inner_text()
    assert "DDPM eq. 4" in texts and "DDPM eq. 2" in texts
    assert not any("seed 00" in page.locator(f"#forward-text-{k}").inner_text()
                   for k in ("images", "curves", "spectrum", "histogram"))


def test_plots_and_formulas_read_on_a_projector(browser, app_process_url, artifacts):
    """Plot text at 13 px or more (ticks 15, titles 17), each text panel one displayed key formula, set larger
    than the prose, and the prose short."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_process_url)
    page.wait_for_selector("#forward-histogram .js-plotly-plot .xtick", timeout=60_000)
    for plot in ("forward-curves", "forward-spectrum", "forward-histogram"):
        assert min(page.evaluate(SIZES, f"#{plot} .xtick text, #{plot} .ytick text")) >= 15, plot
        assert min(page.evaluate(SIZES, f"#{plot} .gtitle")) >= 17, plot
        assert min(page.evaluate(SIZES, f"#{plot} .legendtext, #{plot} .annotation-text"), default=13) >= 13, plot
    for panel in ("images", "curves", "spectrum", "histogram"):
        box = f"#forward-text-{panel}"
        assert page.locator(f"{box} .katex-display").count() == 1, panel
        prose = page.evaluate(SIZES, f"{box} p")[0]
        assert page.evaluate(SIZES, f"{box} .katex-display > .katex")[0] >= 1.3 * prose >= 1.3 * 14, panel
        assert page.evaluate(PROSE, box) < 400, panel
    page.screenshot(path=artifacts / "forward-projector.png", full_page=True)
