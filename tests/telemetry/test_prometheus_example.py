"""The Prometheus example, run as a newcomer runs it: uvicorn on loopback, requests, and
its /metrics scraped over HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "telemetry_prometheus.py"


@pytest.fixture
def example() -> Iterator[str]:
    """The example's printed lines up to ``Ready.``, while it runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ready."):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(60):
            process.kill()
            raise AssertionError(f"the example did not start: {process.communicate()[1]}")
        yield "".join(lines)
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert "Traceback" not in stderr, stderr


def test_the_prometheus_example_exports_oauthguard_metrics(example: str) -> None:
    api = re.search(r"Protected API: +(\S+)", example)
    scrape = re.search(r"Metrics \(Prometheus\): +(\S+)", example)
    token = re.search(r"# scope 'orders:read':\n.*Bearer ([\w.-]+)'", example)
    assert api and scrape and token, example
    orders, bearer = api.group(1), {"authorization": f"Bearer {token.group(1)}"}
    with httpx.Client(timeout=10) as client:
        assert client.get(orders + "/1").status_code == 401
        assert client.get(orders + "/1", headers=bearer).status_code == 200
        assert client.get(orders + "/1", headers=bearer).status_code == 200
        assert client.get(orders, headers={"authorization": "Bearer not-a-jwt"}).status_code == 401
        metrics = client.get(scrape.group(1))
    assert metrics.status_code == 200
    text = metrics.text
    accepted = re.search(r"^oauthguard_requests_total\{([^}]*)\} (\S+)$", text, re.M)
    assert accepted, text
    samples = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("oauthguard_requests_total{")
    }
    by_labels = {labels_of(key): value for key, value in samples.items()}
    issuer = re.search(r"Authorization server \(TestIssuer\): +(\S+)", example)
    assert issuer
    assert (
        by_labels[
            frozenset(
                {
                    ("oauthguard_outcome", "accepted"),
                    ("oauthguard_scheme", "Bearer"),
                    ("oauthguard_issuer", issuer.group(1)),
                    ("http_route", "/orders/{order_id}"),
                }
            )
        ]
        == 2
    )
    assert (
        by_labels[
            frozenset({("oauthguard_outcome", "refused"), ("error_type", "missing_credentials")})
        ]
        == 1
    )
    refused_token = frozenset(
        {
            ("oauthguard_outcome", "refused"),
            ("error_type", "invalid_token"),
            ("oauthguard_scheme", "Bearer"),
        }
    )
    assert by_labels[refused_token] == 1
    assert "oauthguard_token_verification_duration_seconds_count" in text
    assert re.search(r'^oauthguard_jwks_fetches_total\{[^}]*oauthguard_result="ok"', text, re.M)
    assert token.group(1) not in text and "8812734" not in text


def labels_of(sample: str) -> frozenset[tuple[str, str]]:
    """A sample's labels, without the empty ones (the exporter gives every sample of a
    metric every label) and those it adds of the instrumentation scope."""
    pairs = re.findall(r'(\w+)="([^"]*)"', sample)
    return frozenset((k, v) for k, v in pairs if v and not k.startswith("otel_scope_"))
