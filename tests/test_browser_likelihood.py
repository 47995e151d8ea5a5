"""A real browser in the likelihood view: the app served in-process, opened in the system's headless Chromium
(Playwright).

Presses Compute at a large t stride on two gallery images and watches the curve fill (a partial curve is drawn
while the status still says "Evaluating"), until both checkpoints' curves and their bits/dim are shown; reads the
plot and the formula panel as a projector would; then starts a run at stride 1 and stops it. Screenshots go to
test-artifacts/. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

from test_browser import INSIDE, PROSE, SIZES
from test_browser_reverse import open_tab, set_number

WATCH = """() => {  // the status and the number of points drawn, each time the page changes
    window.elboSeen = [];
    const seen = () => {
        const status = document.querySelector('#likelihood-status').innerText;
        const points = document.querySelectorAll('#likelihood-curve .scatterlayer .point').length;
        const last = window.elboSeen.at(-1);
        if (!last || last[0] !== status || last[1] !== points) window.elboSeen.push([status, points]);
    };
    new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
STATUS = "text => document.querySelector('#likelihood-status').innerText.includes(text)"
DRAWN = """() => {  // both checkpoints' totals in the legend
    const legend = [...document.querySelectorAll('#likelihood-curve .legendtext')].map(t => t.textContent);
    return legend.length === 2 && legend.every(text => text.includes('bits/dim')); }"""


def test_the_elbo_curves_stream_and_stop(browser, app_url, artifacts):
    page, errors = open_tab(browser, app_url, "Likelihood", "#likelihood-curve .js-plotly-plot")
    set_number(page, "likelihood-stride", 250)
    set_number(page, "likelihood-n", 2)
    page.evaluate(WATCH)

    page.locator("#likelihood-run").click()
    page.wait_for_function(STATUS, arg="Done", timeout=120_000)
    page.wait_for_function(DRAWN, timeout=30_000)  # the last figure, which Plotly may draw after the status
    seen = page.evaluate("window.elboSeen")
    final_points = seen[-1][1]
    assert any("Evaluating" in status and 0 < points < final_points for status, points in seen), seen
    assert page.locator("#likelihood-curve .scatterlayer .trace").count() >= 2
    legend = page.locator("#likelihood-curve .legendtext").all_text_contents()
    assert [text.split(":")[0] for text in legend] == ["A", "B"] and all("bits/dim" in text for text in legend)
    status = page.locator("#likelihood-status").inner_text()
    assert "bits/dim" in status and "5 model calls per checkpoint" in status

    assert all(page.evaluate(INSIDE, "likelihood-curve"))
    plot = "#likelihood-curve"
    assert min(page.evaluate(SIZES, f"{plot} .xtick text, {plot} .ytick text")) >= 15
    assert min(page.evaluate(SIZES, f"{plot} .gtitle")) >= 17
    assert min(page.evaluate(SIZES, f"{plot} .legendtext")) >= 13
    box = "#likelihood-text"
    assert page.locator(f"{box} .katex-display").count() == 1
    assert page.evaluate(SIZES, f"{box} .katex-display > .katex")[0] >= 1.3 * page.evaluate(SIZES, f"{box} p")[0]
    assert page.evaluate(PROSE, box) < 400 and "DDPM eq. 5" in page.locator(box).inner_text()
    page.screenshot(path=artifacts / "likelihood-after-run.png", full_page=True)

    set_number(page, "likelihood-stride", 1)  # 1000 model calls per checkpoint: stopped long before the end
    page.locator("#likelihood-run").click()
    page.wait_for_function(STATUS, arg="Evaluating", timeout=60_000)
    page.locator("#likelihood-stop").dispatch_event("click")  # the event itself: a busy page may hold mouse input
    page.wait_for_function(STATUS, arg="Stopped", timeout=30_000)
    stopped = page.locator("#likelihood-status").inner_text()
    assert "of 1000 timesteps" in stopped
    page.wait_for_timeout(1500)  # nothing comes after it
    assert page.locator("#likelihood-status").inner_text() == stopped
    assert not errors, errors
