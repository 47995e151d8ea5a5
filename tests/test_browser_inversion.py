"""A real browser in the DDIM-inversion view: the app served in-process, opened in the system's headless Chromium.

A visitor opens the tab, presses Invert and watches x_t climb to x_T and come back, frame by frame; then sees the
inverted noise, its histogram against N(0, 1), its spectrum and the reconstruction error against the steps; then
picks another class and sees the same x_T decoded as that class. The text panel leads with one displayed formula,
names DDIM eq. 12 and keeps its prose short; the plots' type reads on a projector. Screenshots go to
test-artifacts/. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

from test_browser import PROSE, SIZES
from test_browser_reverse import WATCH as REVERSE_WATCH
from test_browser_reverse import open_tab, set_number

WATCH = REVERSE_WATCH.replace("#reverse-xt img", "#inversion-xt img")  # collects the srcs in window.reverseSources
SAYS = "([id, text]) => document.querySelector(`#${id}`).innerText.includes(text)"


def test_invert_see_the_noise_and_decode_it_as_another_class(browser, app_url, artifacts):
    page, errors = open_tab(browser, app_url, "DDIM inversion", "#inversion-x0 img")
    set_number(page, "inversion-steps", 10)
    page.evaluate(WATCH)
    page.locator("#inversion-run").click()
    page.wait_for_function(SAYS, arg=["inversion-status", "Done"], timeout=120_000)
    assert len(page.evaluate("window.reverseSources")) >= 10  # x_t changed as the run streamed
    status = page.locator("#inversion-status").inner_text()
    assert "x_T: mean" in status and "std" in status and "30 model calls" in status
    for elem_id in ("inversion-xT", "inversion-rec"):
        assert page.locator(f"#{elem_id} img").is_visible(), elem_id
    assert "N(0, 1) density" in page.locator("#inversion-histogram .legend").text_content()
    assert "noise floor" in page.locator("#inversion-spectrum").text_content()
    assert page.locator("#inversion-errors .scatterlayer .point").count() == 2  # 5 and 10 steps
    for plot in ("inversion-histogram", "inversion-spectrum", "inversion-errors"):
        assert min(page.evaluate(SIZES, f"#{plot} .xtick text, #{plot} .ytick text")) >= 15, plot
        assert min(page.evaluate(SIZES, f"#{plot} .gtitle")) >= 17, plot
    text = "#inversion-text"
    assert page.locator(f"{text} .katex-display").count() == 1 and page.evaluate(PROSE, text) < 400
    assert "DDIM eq. 12 (Song et al. 2021)" in page.locator(text).inner_text()
    page.screenshot(path=artifacts / "inversion-after-invert.png", full_page=True)

    page.locator("#inversion-target input").click()
    page.get_by_role("option", name="Sneaker").click()
    page.wait_for_function(SAYS, arg=["inversion-edit-status", "Done"], timeout=120_000)
    assert "decoded as Sneaker" in page.locator("#inversion-edit-status").inner_text()
    edited = page.locator("#inversion-edited img")
    assert edited.is_visible() and edited.get_attribute("src") != page.locator("#inversion-x0 img").get_attribute("src")
    page.screenshot(path=artifacts / "inversion-after-edit.png", full_page=True)
    assert not errors, errors
