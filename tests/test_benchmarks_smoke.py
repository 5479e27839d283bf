"""The benchmark script runs and prints its table (``--quick``: no timing is asserted)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def run_quick_benchmark(output: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python benchmarks/run.py --quick --no-services --json output``, run as ``__main__``
    in this process: a subprocess would import oauthguard, Starlette and the MCP SDK again
    (~1 s of CPU) only to run the same script. No redis-server: the fast suite starts none."""
    script = BENCHMARKS / "run.py"
    argv = [str(script), "--quick", "--no-services", "--json", str(output)]
    monkeypatch.setattr(sys, "argv", argv)
    # As ``python script`` would: the script's folder first (for its ``import cases``).
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])
    monkeypatch.delitem(sys.modules, "cases", raising=False)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.modules.pop("cases", None)


def test_quick_benchmark_prints_the_table_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results.json"
    run_quick_benchmark(output, monkeypatch)
    stdout = capsys.readouterr().out
    for label in (
        "bare Starlette route",
        "OAuthGuard, repeated token (cache hit)",
        "OAuthGuard, fresh RS256 token",
        "OAuthGuard, fresh ES256 token",
        "naive ASGI middleware, jwt.decode",
        "MCP SDK auth + PyJWT verifier",
        "floor: RS256 signature check",
        "floor: ES256 signature check",
        "MCP POST, oauthguard.mcp.protect, fresh RS256",
        "MCP POST, protect + tool_scopes, repeated",
        "cache hit / bare route",
        "fresh RS256 overhead / raw RS256 check",
        "MCP POST, SDK auth + PyJWT PyJWKClient, fresh RS256",
        "MCP POST, protect, body read for tools, repeated",
        "MCP fresh: protect / SDK+PyJWKClient, overhead",
        "MCP fresh: protect / SDK+static key, overhead",
        "MCP repeated: protect / bare MCP POST",
        "OAuthGuard, cache hit, OpenTelemetry API, no SDK",
        "OAuthGuard, cache hit, OTel SDK + in-memory reader",
        "cache hit: OTel SDK + in-memory reader − plain",
    ):
        assert label in stdout
    results = json.loads(output.read_text())
    medians = {key: case["median_us"] for key, case in results["cases"].items()}
    assert {
        "bare",
        "cached",
        "fresh_rs256",
        "fresh_es256",
        "naive_rs256",
        "mcp_fresh",
        "mcp_cached",
        "floor_rs256",
        "floor_es256",
        "bare_post",
        "sdk_post_fresh",
        "sdk_post_cached",
        "sdk_jwks_post_fresh",
        "protect_fresh",
        "protect_cached",
        "protect_tools_fresh",
        "protect_tools_cached",
        "protect_read_fresh",
        "protect_read_cached",
        "otel_api_cached",  # the test extra has the OpenTelemetry API and SDK
        "otel_sdk_cached",
        "otel_sdk_fresh",
    } <= set(medians)
    assert all(value > 0 for value in medians.values())
    for target in results["targets"]:
        assert target["result"] in ("met", "MISSED", "shown", "n/a")
        assert (target["value"] is None) == (target["result"] == "n/a")
    assert all(
        target["result"] != "n/a"
        for target in results["targets"]
        if target["name"].startswith("MCP ")
    )
