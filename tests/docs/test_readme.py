"""The README is a front page: short, and its quickstarts are the examples the tests run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTARTS = ("starlette_quickstart.py", "fastapi_quickstart.py", "mcp_quickstart.py")


def test_the_readme_is_at_most_150_lines() -> None:
    assert len(README.splitlines()) <= 150


def test_every_python_block_of_the_readme_is_a_docs_src_example() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)
    examples = [(ROOT / "docs_src" / name).read_text(encoding="utf-8") for name in QUICKSTARTS]
    assert blocks == examples


def test_the_readme_keeps_the_two_commands_ci_runs() -> None:
    lines = README.splitlines()
    demo = next(line for line in lines if "examples/quickstart.py" in line)
    tests = next(line for line in lines if "python -m pytest" in line)
    assert demo.startswith("python3 -m venv") and tests.startswith("python3 -m venv")


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links
    missing = [link for link in links if "://" not in link and not (ROOT / link).is_file()]
    assert not missing
