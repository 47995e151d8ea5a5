"""Files the app writes for its visitors (result grids and GIFs, checkpoints trained in a session): each run or
session gets a folder of its own under a root in the temporary directory, and folders untouched for longer than
a view's KEEP_S are deleted whenever a new one is made."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path


def sweep(root: Path, keep_s: float) -> None:
    """Delete the folders under `root` not modified for `keep_s` seconds (creating `root` if need be)."""
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - keep_s
    for old in root.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)


def new_folder(root: Path, keep_s: float) -> Path:
    """A new empty folder under `root`, after sweeping the old ones."""
    sweep(root, keep_s)
    return Path(tempfile.mkdtemp(dir=root))
