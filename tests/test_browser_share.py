"""A real browser with share links and the lesson: `python app.py` opened in the system's headless Chromium
(Playwright). A link to the toy lab opens that tab with its controls set, names what it left out in a warning,
and the lab's Share button gives back a link to the same settings; lesson steps' buttons open the forward view and
the reverse view at their settings, and the reverse view's Share button gives them back. In CI (CI=true) a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

VALUE = "([sel, value]) => document.querySelector(sel)?.value === value"
TEXT = "([id, text]) => document.querySelector('#' + id)?.innerText.includes(text)"


def selected_tab(page) -> str:
    return page.locator("[role=tab][aria-selected=true]").inner_text().strip()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page, errors


def test_a_link_opens_the_toy_lab_at_its_settings_and_share_gives_it_back(browser, app_process_url, artifacts):
    page, errors = open_page(browser, app_process_url + "?view=toy&dataset=blobs&t=123&n=500&field_kind=eps"
                                                        "&bogus=1")
    page.wait_for_function(VALUE, arg=["#toy-t input[type=number]", "123"], timeout=60_000)
    page.wait_for_function(TEXT, arg=["toy-forward-text", "t = 123"], timeout=30_000)
    assert selected_tab(page) == "2D toy lab"
    assert page.locator("#toy-dataset input").input_value() == "blobs"
    assert page.locator("#toy-n input[type=number]").input_value() == "500"
    assert page.locator("#toy-field input[value=eps]").is_checked()
    assert page.locator("#toy-class").is_visible()  # blobs has classes: the class list shows
    warning = page.locator("[data-testid=toast-body]")
    warning.first.wait_for(timeout=10_000)
    assert "bogus: not a setting of the 2D toy lab" in warning.first.inner_text()
    page.screenshot(path=artifacts / "share-toy-link.png", full_page=True)

    page.locator("#toy-share").get_by_text("Share or save these settings").click()
    page.locator("#toy-share-button").click()
    box = "#toy-share-link textarea, #toy-share-link input"
    page.wait_for_function("sel => document.querySelector(sel)?.value.startsWith('http')", arg=box, timeout=20_000)
    link = page.locator(box).first.input_value()
    assert link.startswith(app_process_url.rstrip("/"))
    query = dict(parse_qsl(urlsplit(link).query))
    assert {k: query[k] for k in ("view", "dataset", "t", "n", "field_kind")} == \
        {"view": "toy", "dataset": "blobs", "t": "123", "n": "500", "field_kind": "eps"}
    assert "bogus" not in query and page.locator("#toy-save").is_visible()
    assert not errors, errors


def test_a_lesson_step_opens_the_forward_view_at_its_settings(browser, app_process_url, artifacts):
    page, errors = open_page(browser, app_process_url)
    page.get_by_role("tab", name="Lesson").click()
    page.wait_for_selector("#lesson-open-2", timeout=60_000)
    assert page.locator("#lesson .katex-display").count() >= 5  # one displayed formula a step
    page.screenshot(path=artifacts / "lesson.png", full_page=True)
    page.locator("#lesson-open-2").click()  # the schedule step: linear, t = 500
    page.wait_for_function(TEXT, arg=["forward-text-images", "t = 500 of T = 1000"], timeout=30_000)
    assert selected_tab(page) == "Forward process"
    assert "linear schedule" in page.locator("#forward-text-images").inner_text()
    assert page.locator("#forward-t input[type=number]").input_value() == "500"
    assert page.locator("#forward-schedule input[value=linear]").is_checked()
    assert page.locator("[data-testid=toast-body]").count() == 0  # the lesson's links are all valid
    assert not errors, errors


def test_a_lesson_step_opens_the_reverse_view_and_its_share_link_carries_the_settings(browser, app_process_url):
    page, errors = open_page(browser, app_process_url)
    page.get_by_role("tab", name="Lesson").click()
    page.locator("#lesson-open-3").click()  # the posterior step: DDPM, 100 steps, sneakers
    page.wait_for_function(VALUE, arg=["#reverse-steps input[type=number]", "100"], timeout=30_000)
    assert selected_tab(page) == "Reverse process"
    assert page.locator("#reverse-method input[value=ddpm]").is_checked()
    assert page.locator("#reverse-class input").input_value() == "Sneaker"
    page.locator("#reverse-advanced").get_by_text("Advanced").click()
    page.wait_for_selector("#reverse-n input", state="visible", timeout=10_000)
    assert page.locator("#reverse-n input[type=number]").input_value() == "8"
    assert page.locator("#reverse-variance").is_visible() and not page.locator("#reverse-eta").is_visible()

    page.locator("#reverse-share").get_by_text("Share or save these settings").click()
    page.locator("#reverse-share-button").click()
    box = "#reverse-share-link textarea, #reverse-share-link input"
    page.wait_for_function("sel => document.querySelector(sel)?.value.startsWith('http')", arg=box, timeout=20_000)
    query = dict(parse_qsl(urlsplit(page.locator(box).first.input_value()).query))
    assert {k: query[k] for k in ("view", "checkpoint", "method", "variance", "steps", "label", "n")} == \
        {"view": "reverse", "checkpoint": "fashion_v_cosine_lean.safetensors", "method": "ddpm",
         "variance": "beta_tilde", "steps": "100", "label": "Sneaker", "n": "8"}
    assert page.locator("[data-testid=toast-body]").count() == 0
    assert not errors, errors
