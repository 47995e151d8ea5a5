"""Shared fixtures: the app served in-process or as `python app.py`, the system Chromium, sample uploads.

Nothing that CI needs may skip there: with CI=true a missing Chromium or Playwright fails the test.
"""
from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from bench.serve import free_port, served_app, wait_for_http
from explorer.threads import configure_threads

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from gradio or its client
# As app.py does, before any test module imports torch: with OpenMP's default spinning waits, two torch threads
# on a busy two-core machine run small ops tens of times slower.
configure_threads("passive")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI") == "true"


def missing(what: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def count_model_calls(monkeypatch) -> SimpleNamespace:
    """From now on, for the test: `.n` counts every call of a DiffusionModel (of every model), `.batch` holds each
    call's batch size, and a hook in `.hooks` {k: f} runs f() as the k-th call starts (a Stop pressed mid-run)."""
    from explorer.checkpoint import DiffusionModel

    counter = SimpleNamespace(n=0, batch=[], hooks={})
    forward = DiffusionModel.forward

    def counting(self, x_t, t, y=None):
        counter.n += 1
        counter.batch.append(x_t.shape[0])
        counter.hooks.get(counter.n, lambda: None)()
        return forward(self, x_t, t, y)

    monkeypatch.setattr(DiffusionModel, "forward", counting)
    return counter


@pytest.fixture(scope="session")
def app_url():
    """The app launched in this process exactly as app.py launches it (explorer.app.launch), on a free port."""
    from explorer.app import demo, launch

    _, url, _ = launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="session")
def app_process_url(artifacts):
    """`python app.py` in a subprocess on a free port (bench.serve); its output goes to test-artifacts/app.log."""
    with served_app(artifacts / "app.log") as (process, url):
        wait_for_http(url, timeout=120, process=process)
        yield url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots and logs worth keeping from a test run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium (Debian package `chromium`; CHROMIUM_PATH overrides)."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("system Chromium (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    """A headless Chromium driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=args)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def close_pages(request):
    """After each browser test, close the pages it opened (each browser.new_page() is a context of its own): left
    open, every visited app page keeps its connection, timers and plots alive and slows the tests that follow."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="session")
def uploads(tmp_path_factory) -> dict[str, Path]:
    """Files a visitor might send, good and bad, by name."""
    d = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    files = {
        "photo": d / "photo.jpg", "cmyk": d / "cmyk.jpg", "palette": d / "palette.png", "rgba": d / "rgba.png",
        "grey16": d / "grey16.png", "tiny": d / "tiny.png", "text": d / "notes.txt", "truncated": d / "cut.jpg",
        "50mp": d / "fifty.png", "bomb": d / "bomb.png",
    }
    photo.save(files["photo"])
    photo.convert("CMYK").save(files["cmyk"])
    photo.convert("P").save(files["palette"])
    photo.convert("RGBA").save(files["rgba"])
    Image.fromarray(rng.integers(0, 65536, (40, 50)).astype(np.uint16)).save(files["grey16"])
    Image.new("RGB", (1, 1), "red").save(files["tiny"])
    files["text"].write_text("not an image\n")
    files["truncated"].write_bytes(files["photo"].read_bytes()[:4000])
    Image.new("L", (10_000, 5_000)).save(files["50mp"])  # 50 megapixels in a 50 kB file
    # A decompression bomb: a 17 kB PNG that decodes to 12000 x 12000 = 144 megapixels.
    w = h = 12_000
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + w // 8)  # filter byte + one bit per pixel
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    files["bomb"].write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                              + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return files
