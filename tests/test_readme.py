"""The README and docs/ stay true: the Python examples of the README and docs/usage.md run, and
every relative link (file and #anchor) in README.md and docs/*.md points at something that exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def anchors(path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_python_example_runs(tmp_path):
    (code,) = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    check = (
        "\nassert km.labels.shape == (512, 512) and set(np.unique(km.labels)) == {1, 2, 3, 4}"
        "\nassert km.centers.shape == (4, 3) and six.n_clusters == 6"
        "\nassert labels.shape == (400, 600) and labels.min() >= 1 and labels.max() <= 4"
        "\nassert table['size_unit'][0] == 'um^2' and objects.n_objects == objects.labels.max() > 0"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import numpy as np\n" + code + check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "astronaut.json").is_file()


def test_usage_python_example_runs(tmp_path):
    (code,) = python_blocks((ROOT / "docs" / "usage.md").read_text(encoding="utf-8"))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "astronaut-kmeans.json").is_file()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    links = [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]
    assert links, f"{page.name} has no relative links to check"
    for link in links:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} -> {path} does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name}: no heading for #{anchor} in {path.name}"
