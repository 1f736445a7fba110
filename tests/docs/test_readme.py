import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show the Python API"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    command = re.search(r"# README test command:\n(.*)\n", ci).group(1).strip()
    assert command in README.read_text()


def test_every_relative_link_and_image_in_the_docs_resolves():
    """Images and links between pages are relative to the page that holds them (a page in docs/results/ reaches
    docs/ with ../, not ../docs/)."""
    root = README.parent
    broken, checked = [], 0
    for page in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        text = page.read_text()
        for target in re.findall(r'\]\(([^)\s]+)\)|src="([^"]+)"', text):
            target = next(t for t in target if t).split("#")[0]
            if target and not re.match(r"[a-z]+:", target):
                checked += 1
                if not (page.parent / target).exists():
                    broken.append(f"{page.relative_to(root)}: {target}")
    assert checked > 30 and not broken, broken


def test_ci_lints_before_the_tests_and_stops_on_the_first_failure():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    tests_at = ci.index("# README test command:")
    assert -1 < ci.find("ruff check ") < tests_at and -1 < ci.find("ruff format --check ") < tests_at
