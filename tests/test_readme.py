"""The README's promises: it opens with the two commands, CI runs the second, and its Python example runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    body = README.split("---", 2)[2]  # after the Spaces front matter
    first, second = code_blocks("bash")[:2]
    assert body.index(first) < body.index("## ")  # before any section
    assert first.strip() == "pip install -r requirements.txt && python app.py"
    assert second.strip().startswith("pip install -r requirements.txt -r requirements-test.txt && ")
    assert second.strip() in (ROOT / ".ci" / "run").read_text()


def test_python_api_example_runs(capsys):
    (example,) = [block for block in code_blocks("python") if "load_model" in block]
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    images = namespace["images"]
    assert images.shape == (16, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    out = capsys.readouterr().out
    assert "alpha_bar_500 = 0.4938" in out and "-> 0 sigma 0.0" in out
