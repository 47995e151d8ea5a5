"""scripts/deploy_space.py: the dry run lists what would go up and checks what Spaces reads, without network."""
import subprocess

import pytest

from scripts import deploy_space

README = """---
title: Test
emoji: x
sdk: gradio
sdk_version: 6.31.0
python_version: "3.11"
app_file: app.py
license: mit
short_description: A test Space
---

# Test
"""


def repo(tmp_path, readme=README, requirements="gradio>=6.0,<7\ntorch>=2.4\n"):
    """A git repository with the files a Space needs, and some it must not get."""
    files = {"README.md": readme, "requirements.txt": requirements, "app.py": "import explorer\n",
             "explorer/__init__.py": "", "tests/test_x.py": "", "bench/speed.py": ""}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "m.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{}      " + bytes(100))
    (tmp_path / "untracked.py").write_text("")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", *files, "pretrained"], cwd=tmp_path, check=True)
    return tmp_path


def test_dry_run_of_this_repository_sends_nothing(monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: pytest.fail("the dry run must not reach the Hub"))
    assert deploy_space.main(["--space", "me/diffusion-explorer", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: checks passed, nothing sent" in out
    listed = [line.split()[-1] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert {"app.py", "README.md", "requirements.txt", "explorer/checkpoint.py"} <= set(listed)
    assert not [p for p in listed if p.startswith(("tests/", "bench/", "scripts/", ".ci/", "runs/"))]
    assert any("binary (large-file storage)  pretrained/fashion_v_cosine_lean.safetensors" in line
               for line in out.splitlines())


def test_plan_takes_tracked_app_files_and_marks_binaries(tmp_path):
    rows, problems = deploy_space.plan(repo(tmp_path))
    assert problems == []
    assert [(p, binary) for p, _, binary in rows] == [("README.md", False), ("app.py", False),
                                                      ("explorer/__init__.py", False),
                                                      ("pretrained/m.safetensors", True), ("requirements.txt", False)]


@pytest.mark.parametrize("readme,requirements,problem", [
    (README.replace("sdk_version: 6.31.0", "sdk_version: 5.9.1"), None, "sdk_version 5.9.1 is outside"),
    (README.replace("app_file: app.py", "app_file: main.py"), None, "app_file 'main.py' is not among"),
    (README.replace("sdk: gradio", "sdk: docker"), None, "sdk must be gradio"),
    (README.replace("A test Space", "x" * 61), None, "short_description is longer than 60"),
    (README.replace('python_version: "3.11"\n', ""), None, "lacks python_version"),
    (None, "-e .\ngradio>=6\n", "'-e .' is a local install"),
    (None, "torch\n", "does not list gradio"),
])
def test_checks_name_what_to_fix(tmp_path, readme, requirements, problem):
    root = repo(tmp_path, readme or README, requirements or "gradio>=6.0,<7\n")
    _, problems = deploy_space.plan(root)
    assert any(problem in p for p in problems), problems


def test_refusals_are_messages(tmp_path, monkeypatch, capsys):
    assert deploy_space.main(["--space", "no-slash", "--dry-run"]) == 2
    assert "--space must be USER/NAME" in capsys.readouterr().err
    with pytest.raises(deploy_space.DeployError, match="front matter"):
        deploy_space.front_matter("# no front matter\n")
    monkeypatch.setattr(deploy_space, "ROOT", repo(tmp_path, README.replace("sdk: gradio", "sdk: static")))
    assert deploy_space.main(["--space", "me/x", "--dry-run"]) == 1
    assert "not ready:\n- README front matter: sdk must be gradio" in capsys.readouterr().err
