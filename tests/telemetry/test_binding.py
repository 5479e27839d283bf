"""Without OpenTelemetry, or with its API and no SDK, nothing is bound and nothing recorded;
an SDK configured after import is picked up when the app starts, never looked up per
request. Each case in a process of its own: the global providers can be set only once."""

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
asyncio.run(get(issuer.token(audience="https://api.test/data")))  # no lookup per request
assert bound.metrics is None


async def start_and_get(token):
    messages = [{"type": "lifespan.startup"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else await asyncio.Event().wait()

    async def send(message):
        sent.append(message["type"])

    lifespan = asyncio.ensure_future(guard({"type": "lifespan", "state": {}}, receive, send))
    while not sent:
        await asyncio.sleep(0)
    assert sent == ["lifespan.startup.complete"], sent
    await get(token)
    lifespan.cancel()


asyncio.run(start_and_get(first))  # the app starts: the SDK is bound; a cache hit counted
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
