"""The pages' code: examples come from ``docs_src/``, and every example there is shown."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)
INCLUDE = re.compile(r'--8<-- "docs_src/([^":]+)')


def test_every_docs_src_example_is_on_a_page() -> None:
    shown = {name for page in PAGES for name in INCLUDE.findall(page.read_text("utf-8"))}
    examples = {path.name for path in (ROOT / "docs_src").iterdir() if path.is_file()}
    assert examples <= shown, f"not on any page: {sorted(examples - shown)}"


def test_every_inline_python_block_is_python() -> None:
    # The few fragments that stay inline (a decorator on `...`, one argument of many) must
    # at least be Python: a renamed argument shows up in their review, a typo here.
    for page in PAGES:
        for block in BLOCK.findall(page.read_text("utf-8")):
            if "--8<--" not in block:
                ast.parse(block, filename=str(page))
