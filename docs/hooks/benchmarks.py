"""MkDocs hook: the performance page's tables, rendered from the committed benchmark results.

``docs/benchmarks.json`` is the file ``benchmarks/run.py --json docs/benchmarks.json`` writes;
the page holds the marker below and never a figure typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark-tables -->"
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks.json"


def render_tables(results: dict[str, Any]) -> str:
    """Markdown for one benchmark run: how it was measured, every case, every target."""
    cases: dict[str, dict[str, Any]] = results["cases"]
    bare = cases["bare"]["median_us"]
    lines = [
        f"One run: Python {results['python']} on {results['machine']}, "
        f"{results['rounds']} rounds of {results['batch']} requests per case, "
        f"{results['measured']} per request (median).",
        "",
        "| request | median µs | over the bare route |",
        "|---|---:|---:|",
    ]
    for key, case in cases.items():
        median = case["median_us"]
        extra = "–" if key == "bare" or key.startswith("floor_") else _over(median, bare)
        lines.append(f"| {case['label']} | {median:.1f} | {extra} |")
    for key, reason in results.get("unavailable", {}).items():
        lines.append(f"| {key} | n/a | {reason} |")
    lines += ["", "| target | figure | limit | result |", "|---|---:|---|---|"]
    for target in results["targets"]:
        value = target["value"]
        figure = "n/a" if value is None else f"{value:.2f}{target['unit']}"
        lines.append(f"| {target['name']} | {figure} | {target['limit']} | {target['result']} |")
    return "\n".join(lines)


def _over(median: float, bare: float) -> str:
    return f"+{median - bare:.1f} ({median / bare:.2f}×)"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the marker with the tables of ``docs/benchmarks.json``."""
    if MARKER not in markdown:
        return markdown
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    return markdown.replace(MARKER, render_tables(results))
