"""The performance page's tables come from the committed benchmark results, not from hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "benchmarks_hook", ROOT / "docs/hooks/benchmarks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_holds_no_figure_but_the_marker() -> None:
    page = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    assert page.count(hook().MARKER) == 1
    assert "| request |" not in page and " µs |" not in page


def test_the_rendered_tables_are_the_json_results() -> None:
    results = json.loads((ROOT / "docs/benchmarks.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    rendered = hook().on_page_markdown(page)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in rendered.splitlines()}
    for case in results["cases"].values():
        assert f"| {case['label']} | {case['median_us']:.1f} |" in rows[case["label"]]
    for target in results["targets"]:
        figure = "n/a" if target["value"] is None else f"{target['value']:.2f}{target['unit']}"
        line = rows[target["name"]]
        assert f"| {figure} | {target['limit']} | {target['result']} |" in line
    assert f"Python {results['python']}" in rendered
