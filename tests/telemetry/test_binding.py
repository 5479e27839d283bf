"""Without OpenTelemetry, or with its API and no SDK, nothing is bound and nothing recorded;
an SDK configured after import is picked up at the next new token. Each case in a process
of its own: the global providers can be set only once in a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

REQUESTS = """
import asyncio, sys
if sys.argv[1] == "absent":
    sys.modules["opentelemetry"] = None  # as if the extra were not installed
import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from oauthguard import OAuthGuard, ResourceServer, _telemetry
from oauthguard.testing import TestIssuer

issuer = TestIssuer(algorithms=("RS256",))
app = Starlette(routes=[Route("/data", lambda request: PlainTextResponse("ok"))])
server = ResourceServer(
    resource="https://api.test/data",
    authorization_servers=[issuer.issuer],
    http_client=issuer.http_client(),
)
guard = OAuthGuard(app, server)

async def get(token):
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        response = await client.get("/data", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text

first = issuer.token(audience="https://api.test/data")
asyncio.run(get(first))
asyncio.run(get(first))
bound = _telemetry.TELEMETRY
assert bound.metrics is None and bound.tracer is None, "bound without an SDK"
if sys.argv[1] == "absent":
    assert _telemetry.otel_metrics is None
    print("nothing bound")
    raise SystemExit

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
asyncio.run(get(first))  # a cache hit: the hot path looks nothing up
assert bound.metrics is None
asyncio.run(get(issuer.token(audience="https://api.test/data")))  # a new token binds
points = [
    (metric.name, point.value)
    for resource in reader.get_metrics_data().resource_metrics
    for scope in resource.scope_metrics
    for metric in scope.metrics
    for point in metric.data.data_points
    if metric.name == "oauthguard.requests"
]
assert points == [("oauthguard.requests", 1)], points
print("bound after import")
"""


def run(case: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS, case],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_the_api_nothing_is_bound_and_requests_pass() -> None:
    assert run("absent") == "nothing bound\n"


def test_with_the_api_alone_nothing_is_bound_until_an_sdk_is_configured() -> None:
    assert run("api") == "bound after import\n"
