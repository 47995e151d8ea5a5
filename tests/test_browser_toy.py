"""A real browser in the 2D toy lab: `python app.py` opened in the system's headless Chromium (Playwright).

Starts live training, stops it after its first update and checks what a visitor sees: the status says where it
stopped and stays so (no "Error" label), the stopped model is kept and offered for download, and the lab has
switched to it (the redraw chained after training ran). Screenshots go to test-artifacts/. In CI (CI=true) a
missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

import pytest
from test_browser_reverse import open_tab, set_number

TEXT = "([id, text]) => document.querySelector('#' + id).innerText.includes(text)"
VALUE = "([id, value]) => document.querySelector(`#${id} input[type=number]`).value === value"
SETTLED = "id => !document.querySelector('#' + id).innerText.includes('processing')"  # no event's progress label


def test_training_stops_cleanly_and_keeps_its_model(browser, app_process_url, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # the browser fixture has checked it imports

    # the page drawn (its load events done) before anything is clicked
    page, errors = open_tab(browser, app_process_url, "2D toy lab", "#toy-forward .js-plotly-plot")
    page.locator("#toy-train-live").get_by_text("Train live").click()
    set_number(page, "toy-train-steps", 20000)
    page.wait_for_function(VALUE, arg=["toy-train-steps", "20000"], timeout=10_000)
    page.locator("#toy-train").click()
    try:
        page.wait_for_function(TEXT, arg=["toy-train-text", "of 20000"], timeout=120_000)  # the first update
    except PlaywrightTimeout:
        page.screenshot(path=artifacts / "toy-no-first-update.png", full_page=True)
        pytest.fail(f"no training update within 120 s; the status reads {page.locator('#toy-train-text').inner_text()!r}"
                    f" and the steps box {page.locator('#toy-train-steps input[type=number]').input_value()!r}; "
                    f"page errors {errors}; the server's log is test-artifacts/app.log")
    # the event itself, not a synthesized mouse click: while updates stream, Chromium may hold mouse input until
    # the page's next frame, which a busy 2-core machine can delay past Playwright's click timeout
    page.locator("#toy-stop-train").dispatch_event("click")
    page.wait_for_function(TEXT, arg=["toy-train-text", "Stopped"], timeout=30_000)
    # the Stop button answers at once; the training event itself ends before its next step (its progress label
    # goes) and the redraw chained after it switches the lab to the stopped model
    page.wait_for_function(SETTLED, arg="toy-train-text", timeout=30_000)
    page.wait_for_function(TEXT, arg=["toy-model-info", "the model trained here"], timeout=30_000)
    stopped = page.locator("#toy-train-text").inner_text()
    assert "that model is kept" in stopped
    page.wait_for_timeout(1500)  # nothing comes after it
    assert page.locator("#toy-train-text").inner_text() == stopped
    assert page.locator("#toy-download").is_visible()
    for elem_id in ("toy-curves", "toy-preview"):  # they appeared with the first update
        assert page.locator(f"#{elem_id} .js-plotly-plot").is_visible(), elem_id
    page.screenshot(path=artifacts / "toy-after-stop.png", full_page=True)
    assert not errors, errors


POINTS = """id => [...document.querySelectorAll(`#${id} .scatterlayer .point`)]
    .filter(p => p.getBoundingClientRect().width > 0).map(p => p.getAttribute('transform'))"""


def test_the_first_forward_frame_shows_its_particles(browser, app_process_url, artifacts):
    """Opening the lab's tab shows the forward cloud at once: its 2000 particles are drawn (as SVG points, which
    a tab hidden while the page loaded cannot leave blank, as it did a WebGL canvas), spread over the plot."""
    page, errors = open_tab(browser, app_process_url, "2D toy lab", "#toy-forward .js-plotly-plot")
    page.wait_for_function(f"id => ({POINTS})(id).length >= 2000", arg="toy-forward", timeout=30_000)
    where = page.evaluate(POINTS, "toy-forward")
    assert len(set(where)) > 1500  # distinct positions, not one stacked dot
    page.screenshot(path=artifacts / "toy-first-frame.png", full_page=True)
    assert not errors, errors


EMPTY = """() => [...document.querySelectorAll('#toy-train-live [aria-label="Empty value"]')]
    .filter(e => e.getBoundingClientRect().height > 0).length"""  # empty placeholders a visitor sees


def test_train_live_shows_no_empty_plots_before_training(browser, app_process_url, artifacts):
    """The "Train live" section opens collapsed; collapsed or opened, it shows no empty plot placeholders
    before anything was trained (the plots appear with the first update)."""
    page, errors = open_tab(browser, app_process_url, "2D toy lab", "#toy-forward .js-plotly-plot")
    assert not page.locator("#toy-train").is_visible()  # collapsed
    assert page.evaluate(EMPTY) == 0
    page.locator("#toy-train-live").get_by_text("Train live").click()
    page.wait_for_selector("#toy-train", state="visible", timeout=10_000)
    page.wait_for_timeout(500)
    assert page.evaluate(EMPTY) == 0
    page.locator("#toy-train-live").screenshot(path=artifacts / "toy-train-live-opened.png")
    assert not errors, errors
