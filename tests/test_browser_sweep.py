"""A real browser in the steps sweep: `python app.py` opened in the system's headless Chromium (Playwright).

A visitor opens the tab, keeps steps 5 and 10, runs the sweep on the bundled default checkpoint and watches the
grid fill in cell by cell; each cell shows its picture with its model calls and seconds, the table lists them, the
text leads with one formula; then a sweep with the slow 1000 column is stopped. Screenshots go to test-artifacts/.
In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

import re

from test_browser import PROSE, SIZES
from test_browser_reverse import open_tab, set_number

STATUS = "text => document.querySelector('#sweep-status').innerText.includes(text)"
WATCH = """() => {  // the number of finished cells after every change of the grid
    window.sweepDone = [];
    new MutationObserver(() => window.sweepDone.push(document.querySelectorAll('#sweep-grid td.done').length))
        .observe(document.querySelector('#sweep-grid'), {subtree: true, childList: true});
}"""
CELLS = """() => [...document.querySelectorAll('#sweep-grid td.done')].map(td => {
    const img = td.querySelector('img');
    return [td.dataset.sampler, +td.dataset.steps, td.querySelector('.caption').innerText,
            img.complete && img.naturalWidth > 0, img.getBoundingClientRect().width]; })"""
ROWS = """() => [...document.querySelectorAll('#sweep-table [role=row].virtual-row')]
    .map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim()))"""  # the table's rows


def test_a_visitor_sweeps_5_and_10_steps_and_stops_a_slow_sweep(browser, app_process_url, artifacts):
    page, errors = open_tab(browser, app_process_url, "Steps sweep", "#sweep-run")
    steps = page.locator("#sweep-steps")
    assert steps.get_by_label("1000 (slow)").is_checked() is False  # the slow column waits to be asked for
    for k in ("20", "50"):
        steps.get_by_label(k, exact=True).uncheck()
    set_number(page, "sweep-n", 1)
    page.evaluate(WATCH)

    page.locator("#sweep-run").click()
    page.wait_for_function(STATUS, arg="Done", timeout=240_000)
    assert "8 cells, 60 model calls" in page.locator("#sweep-status").inner_text()
    cells = page.evaluate(CELLS)
    assert len(cells) == 8 and page.locator("#sweep-grid td.pending").count() == 0
    for sampler, k, caption, drawn, width in cells:
        assert re.fullmatch(rf"{k} calls · \d+\.\d\d s", caption), (sampler, caption)
        assert drawn and width >= 84, (sampler, k)  # the picture decoded, enlarged to read
    assert {(s, k) for s, k, *_ in cells} == {(s, k) for s in ("ddpm", "ddim eta 0", "ddim eta 1", "dpm-solver++")
                                              for k in (5, 10)}
    heads = page.locator("#sweep-grid thead th").all_inner_texts()
    assert heads[1:] == ["5 steps", "10 steps"] and "x_T" in heads[0]
    assert page.locator("#sweep-grid tbody th").all_inner_texts() == ["DDPM", "DDIM, η = 0", "DDIM, η = 1",
                                                                       "DPM-Solver++(2M)"]
    done = page.evaluate("window.sweepDone")
    assert any(0 < d < 8 for d in done) and done == sorted(done), done  # a partial grid, growing
    rows = page.wait_for_function(f"() => ({ROWS})().length == 8 && ({ROWS})()", timeout=10_000).json_value()
    assert [r[:3] for r in rows] == [[s, k, k] for k in ("5", "10") for s in ("DDPM", "DDIM, η = 0", "DDIM, η = 1",
                                                                             "DPM-Solver++(2M)")], rows
    assert all(float(r[3]) > 0 for r in rows), rows
    assert min(page.evaluate(SIZES, "#sweep-grid .caption")) >= 13 and \
        min(page.evaluate(SIZES, "#sweep-grid thead th")) >= 17
    about = "#sweep-about"
    assert page.locator(f"{about} .katex-display").count() == 1 and page.evaluate(PROSE, about) < 400
    assert "DDIM eq. 12" in page.locator(about).inner_text()
    page.screenshot(path=artifacts / "sweep-after-run.png", full_page=True)

    steps.get_by_label("1000 (slow)").check()
    page.locator("#sweep-run").click()
    page.wait_for_function(STATUS, arg="of 12 cells done · running", timeout=120_000)
    page.locator("#sweep-stop").dispatch_event("click")  # the event itself: a busy page may hold a mouse click
    page.wait_for_function(STATUS, arg="Stopped", timeout=30_000)
    stopped = page.locator("#sweep-status").inner_text()
    done = re.fullmatch(r"Stopped with (\d+) of 12 cells done\.", stopped)
    assert done and int(done[1]) < 12, stopped  # stopped before the 1000-step column was through
    page.wait_for_timeout(1500)  # nothing comes after it
    assert page.locator("#sweep-status").inner_text() == stopped
    assert page.locator("#sweep-grid td.pending").count() == 12 - int(done[1])  # the cells it never ran stay blank
    page.screenshot(path=artifacts / "sweep-after-stop.png", full_page=True)
    assert not errors, errors
