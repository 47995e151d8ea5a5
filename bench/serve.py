"""The app served as visitors get it, `python app.py` in its own process on a free loopback port: for the
benchmark that drives it from outside (bench/load.py) and for the tests' `app_process_url` fixture
(tests/conftest.py).

No torch and no gradio here: the app runs in its own process, and importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_S = 30  # how long an ended app may take to exit after SIGTERM before it is killed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Return once `url` answers; RuntimeError if `process` exits first, TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def served_app(log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py` from the repository root on a free loopback port (GRADIO_SERVER_NAME / _PORT), its output
    in `log`: yields (process, url) as soon as it starts (it loads its models before it answers: wait for it with
    `wait_for_http`); on exit it is terminated, and killed after STOP_S seconds."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
