"""Deploy the app to a Hugging Face Space with huggingface_hub's `upload_folder`.

    python -m scripts.deploy_space --space USER/NAME --dry-run    # what would go up, and the checks; no network
    HF_TOKEN=... python -m scripts.deploy_space --space USER/NAME  # create the Space if needed, then upload

What goes up: the files git tracks that the app needs (SPACE_FILES: app.py, the README with the Space's front
matter, requirements.txt, the explorer package, the bundled checkpoints, the README's pictures); no tests,
benchmarks or scripts. `upload_folder` commits over the Hub's HTTP API, which stores binary files (checkpoints,
PNGs) in its large-file storage and records them in the Space's .gitattributes: they never go up as plain git
blobs, which the Hub rejects. The dry run marks them.
Checks before anything is sent (the dry run stops after them): the README front matter Spaces reads (sdk gradio,
an sdk_version that requirements.txt's gradio range admits, app_file among the files, python_version, a
short_description of at most 60 characters), requirements.txt (no editable or local installs), and each file
below the Hub's plain-file limit unless binary.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parents[1]
SPACE_FILES = ("app.py", "README.md", "LICENSE", "requirements.txt", "explorer/*", "pretrained/*", "docs/*.png")
TEXT_LIMIT = 10 * 1024 * 1024  # the Hub refuses larger plain (non-LFS) files
REQUIRED_KEYS = ("title", "sdk", "sdk_version", "app_file", "python_version", "short_description")
MAX_SHORT_DESCRIPTION = 60


class DeployError(ValueError):
    """The repository is not ready for a Space (the message says what to fix)."""


def space_files(root: Path = ROOT) -> list[str]:
    """The tracked files the Space needs, sorted."""
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in tracked.splitlines() if any(fnmatch.fnmatch(p, pattern) for pattern in SPACE_FILES)
                  and (root / p).is_file())


def is_binary(path: Path) -> bool:
    """True for files with a NUL byte in their first 8 KB (git's own test), which the Hub stores as large files."""
    with open(path, "rb") as f:
        return b"\0" in f.read(8192)


def front_matter(readme: str) -> dict:
    """The YAML block between the README's opening '---' lines."""
    if not readme.startswith("---\n") or "\n---\n" not in readme[4:]:
        raise DeployError("README.md must open with the Space's YAML front matter between two '---' lines")
    meta = yaml.safe_load(readme[4:readme.index("\n---\n", 4)])
    if not isinstance(meta, dict):
        raise DeployError("README.md's front matter is not a YAML mapping")
    return meta


def check(root: Path, files: list[str]) -> list[str]:
    """Every problem that would break the Space, as messages (empty when ready)."""
    problems = []
    meta = front_matter((root / "README.md").read_text())
    problems += [f"README front matter lacks {key}" for key in REQUIRED_KEYS if key not in meta]
    if meta.get("sdk") != "gradio":
        problems.append(f"README front matter: sdk must be gradio, got {meta.get('sdk')!r}")
    if meta.get("app_file") not in files:
        problems.append(f"README front matter: app_file {meta.get('app_file')!r} is not among the uploaded files")
    if len(str(meta.get("short_description", ""))) > MAX_SHORT_DESCRIPTION:
        problems.append(f"README front matter: short_description is longer than {MAX_SHORT_DESCRIPTION} characters")
    gradio = None
    for line in (root / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-e", "--editable", ".", "/", "file:")):
            problems.append(f"requirements.txt: {line!r} is a local install, which a Space cannot make")
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            problems.append(f"requirements.txt: {line!r} is not a requirement pip understands")
            continue
        gradio = req if req.name == "gradio" else gradio
    if gradio is None:
        problems.append("requirements.txt does not list gradio")
    elif "sdk_version" in meta and not gradio.specifier.contains(str(meta["sdk_version"]), prereleases=True):
        problems.append(f"README front matter: sdk_version {meta['sdk_version']} is outside requirements.txt's "
                        f"{gradio}")
    for p in files:
        if (root / p).stat().st_size > TEXT_LIMIT and not is_binary(root / p):
            problems.append(f"{p} is a text file over 10 MB, which the Hub refuses")
    return problems


def plan(root: Path = ROOT) -> tuple[list[tuple[str, int, bool]], list[str]]:
    """(path, bytes, binary) of each file that would go up, and the problems found."""
    files = space_files(root)
    rows = [(p, (root / p).stat().st_size, is_binary(root / p)) for p in files]
    return rows, check(root, files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", required=True, help="the Space's repo id, USER/NAME")
    p.add_argument("--dry-run", action="store_true", help="list the files and run the checks; send nothing")
    p.add_argument("--private", action="store_true", help="create the Space private")
    args = p.parse_args(argv)
    if args.space.count("/") != 1 or not all(args.space.split("/")):
        print(f"deploy_space: error: --space must be USER/NAME, got {args.space!r}", file=sys.stderr)
        return 2
    try:
        rows, problems = plan(ROOT)
    except DeployError as err:
        rows, problems = [], [str(err)]
    for path, size, binary in rows:
        print(f"{size:>10,}  {'binary (large-file storage)' if binary else 'text':<27}  {path}")
    total = sum(size for _, size, _ in rows)
    print(f"{len(rows)} files, {total / 1e6:.1f} MB, {sum(b for *_, b in rows)} binary -> {args.space}")
    if problems:
        print("not ready:\n" + "\n".join(f"- {problem}" for problem in problems), file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: checks passed, nothing sent")
        return 0
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ.get("HF_TOKEN"))
    api.create_repo(args.space, repo_type="space", space_sdk="gradio", private=args.private, exist_ok=True)
    info = api.upload_folder(repo_id=args.space, repo_type="space", folder_path=ROOT,
                             allow_patterns=[path for path, _, _ in rows],
                             commit_message="Deploy with scripts/deploy_space.py")
    print(f"uploaded: {info.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
