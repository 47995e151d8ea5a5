"""A real browser: `python app.py` opened in the system's headless Chromium (Playwright).

In the forward view the arrow keys step t (Shift by 10) while the focus is not in a field, the projector mode
enlarges the page's type and the figures' fonts (and keeps them large when the server draws a figure again), and
the figures' PNG and the curves' CSV downloads carry names; in the reverse view the keys move the step slider
after a run. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

from test_browser_reverse import NUMBERS, STATUS, open_tab, set_number

from explorer.app.forward import KEYS_HINT

T_BOX = "#forward-t input[type=number]"
SIZE = "sel => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize)"
TEXT = "t => document.querySelector('#forward-text-images').innerText.includes(`t = ${t} of`)"
TICK, PROSE = "#forward-curves .xtick text", "#forward-text-images p"


def test_keys_step_t_and_the_projector_mode_enlarges_the_type(browser, app_process_url, artifacts):
    page, errors = open_tab(browser, app_process_url, "Forward process", "#forward-curves .js-plotly-plot .xtick",
                            height=1000)
    assert page.locator("#forward-t").get_by_text(KEYS_HINT).is_visible()
    x_t = page.locator("#forward-xt img").get_attribute("src")

    page.keyboard.press("ArrowRight")
    page.wait_for_function(TEXT, arg=251, timeout=20_000)
    assert page.locator(T_BOX).input_value() == "251"
    assert page.locator("#forward-xt img").get_attribute("src") != x_t
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_function(TEXT, arg=261, timeout=20_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(TEXT, arg=260, timeout=20_000)
    page.locator("#forward-seed input").press("ArrowRight")  # a field's own key: t stays
    page.wait_for_timeout(500)
    assert page.locator(T_BOX).input_value() == "260"

    config = page.evaluate("() => document.querySelector('#forward-curves .js-plotly-plot')._context")
    assert config["toImageButtonOptions"]["filename"] == "schedule_cosine_T1000"
    assert page.locator("#forward-curves .modebar-btn[data-title='Download plot as a PNG']").count() == 1
    with page.expect_download() as download:
        page.locator("#forward-csv").click()
    assert download.value.suggested_filename == "alpha_bar_cosine_T1000.csv"

    tick, prose = page.evaluate(SIZE, TICK), page.evaluate(SIZE, PROSE)
    page.locator("#projector input").check()
    page.wait_for_function(f"() => ({SIZE})('{TICK}') >= 1.25 * {tick}", timeout=10_000)
    assert page.evaluate(SIZE, PROSE) >= 1.25 * prose
    page.keyboard.press("ArrowRight")  # the server draws the figures again: still large
    page.wait_for_function(TEXT, arg=261, timeout=20_000)
    page.wait_for_timeout(300)
    assert page.evaluate(SIZE, TICK) >= 1.25 * tick
    page.screenshot(path=artifacts / "forward-projector-mode.png", full_page=True)
    page.locator("#projector input").uncheck()
    page.wait_for_function(f"() => ({SIZE})('{TICK}') == {tick}", timeout=10_000)
    assert page.evaluate(SIZE, PROSE) == prose
    assert not errors, errors
    page.close()


def test_keys_move_the_reverse_step_slider_after_a_run(browser, app_process_url):
    page, errors = open_tab(browser, app_process_url, "Reverse process", "#reverse-sigmas .js-plotly-plot")
    assert page.locator("#reverse-scrub").get_by_text("← → step, Shift ×10").is_visible()
    set_number(page, "reverse-steps", 4)
    page.locator("#reverse-generate").click()  # the focus on a button: the keys are the page's
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    page.wait_for_selector("#reverse-scrub input[type=range]:not([disabled])", timeout=20_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(NUMBERS, arg="Step 3 of 4", timeout=20_000)
    page.keyboard.press("Shift+ArrowLeft")  # to 0, not beyond
    page.wait_for_function(NUMBERS, arg="x_T at t = 1000", timeout=20_000)
    assert page.locator("#reverse-scrub input[type=number]").input_value() == "0"
    assert not errors, errors
    page.close()
