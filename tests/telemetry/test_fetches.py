"""Metadata and JWKS fetches by result, keys removed by rotation, and their client spans:
children of the request's span when an ASGI instrumentation made one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from guards import build_guard
from introspection_server import Clock
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from support import free_port, serve

from oauthguard.testing import TestIssuer

if TYPE_CHECKING:
    from telemetry_setup import Recorded

RESOURCE = "https://api.test/data"
METADATA, JWKS = "oauthguard.metadata.fetches", "oauthguard.jwks.fetches"


async def data(request: Request) -> Response:
    return JSONResponse({"ok": True})


def client_for(issuer: str, **options: object) -> TestClient:
    guard = build_guard(
        Starlette(routes=[Route("/data", data)]),
        resource=RESOURCE,
        authorization_servers=[issuer],
        **options,
    )
    return TestClient(guard, base_url="https://api.test")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def get(guard_options: dict[str, object], issuer: str, token: str) -> httpx.Response:
    """One request through a guard whose own HTTP client reaches ``issuer`` over loopback."""
    async with httpx.AsyncClient() as http:
        guard = build_guard(
            Starlette(routes=[Route("/data", data)]),
            resource=RESOURCE,
            authorization_servers=[issuer],
            http_client=http,
            **guard_options,
        )
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            return await client.get("/data", headers=bearer(token))


@pytest.mark.anyio
async def test_an_unreachable_issuer_counts_failed_fetches_and_a_503(recorded: Recorded) -> None:
    issuer = TestIssuer(f"http://127.0.0.1:{free_port()}", algorithms=("RS256",))  # not served
    response = await get({"http_timeout": 2}, issuer.issuer, issuer.token(audience=RESOURCE))

    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert recorded.count(METADATA, oauthguard_result="failed", oauthguard_issuer=issuer.issuer)
    assert recorded.count(JWKS, oauthguard_result="failed", oauthguard_issuer=issuer.issuer) == 1
    assert recorded.count(JWKS, oauthguard_result="ok") == 0
    assert recorded.count(
        "oauthguard.requests", oauthguard_outcome="refused", error_type="temporarily_unavailable"
    )
    spans = recorded.spans("oauthguard metadata")
    assert spans and all(span.status.status_code.name == "ERROR" for span in spans)
    assert {span.attributes["error.type"] for span in spans} == {"ConnectError"}
    assert spans[0].attributes["server.address"] == "127.0.0.1"
    assert spans[0].attributes["oauthguard.issuer"] == issuer.issuer


async def served_again_after_an_outage(seconds: float) -> TestIssuer:
    """Two requests with fresh tokens: the first while the issuer serves, the second
    ``seconds`` later, once it is gone; both must pass. Returns the issuer."""
    clock = Clock()
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("RS256",), clock=clock)
    async with httpx.AsyncClient() as http:
        guard = build_guard(
            Starlette(routes=[Route("/data", data)]),
            resource=RESOURCE,
            authorization_servers=[issuer.issuer],
            http_client=http,
            clock=clock,
            http_timeout=2,
        )
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            with serve(issuer.app, port=port):
                first = await client.get("/data", headers=bearer(issuer.token(audience=RESOURCE)))
                assert first.is_success
            clock.advance(seconds)
            again = await client.get("/data", headers=bearer(issuer.token(audience=RESOURCE)))
            assert again.is_success  # the last good keys, within keys_max_stale
    return issuer


@pytest.mark.anyio
async def test_the_last_good_keys_served_while_the_jwks_fails_count_as_stale(
    recorded: Recorded,
) -> None:
    issuer = await served_again_after_an_outage(300 + 1)  # its JWKS max-age: the keys are due

    assert recorded.count(JWKS, oauthguard_result="ok") == 1
    assert recorded.count(JWKS, oauthguard_result="stale", oauthguard_issuer=issuer.issuer) == 1
    jwks = recorded.spans("oauthguard jwks")
    assert [span.status.status_code.name for span in jwks] == ["UNSET", "ERROR"]
    assert jwks[0].attributes["url.full"] == issuer.jwks_uri
    assert jwks[0].attributes["http.response.status_code"] == 200


def test_a_key_removed_by_rotation_is_counted(recorded: Recorded) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer.issuer, http_client=issuer.http_client(), jwks_refresh_cooldown=0)
    assert client.get("/data", headers=bearer(issuer.token(audience=RESOURCE))).is_success
    issuer.rotate("RS256")
    assert client.get("/data", headers=bearer(issuer.token(audience=RESOURCE))).is_success

    assert recorded.new("oauthguard.jwks.removed_keys") == {
        frozenset({"oauthguard.issuer": issuer.issuer}.items()): 1
    }
    assert recorded.count(JWKS, oauthguard_result="ok") == 2


def test_fetch_spans_are_children_of_the_asgi_instrumentation_request_span(
    recorded: Recorded,
) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    issuer = TestIssuer(algorithms=("RS256",))
    guard = build_guard(
        Starlette(routes=[Route("/data", data)]),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    client = TestClient(OpenTelemetryMiddleware(guard), base_url="https://api.test")
    assert client.get("/data", headers=bearer(issuer.token(audience=RESOURCE))).is_success

    [request] = [span for span in recorded.spans() if span.kind.name == "SERVER"]
    fetches = recorded.spans("oauthguard metadata") + recorded.spans("oauthguard jwks")
    assert len(fetches) == 2
    for span in fetches:
        assert span.kind.name == "CLIENT"
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert span.context.trace_id == request.context.trace_id


def test_span_urls_never_carry_credentials_or_a_query(recorded: Recorded) -> None:
    from oauthguard._telemetry import TELEMETRY

    with TELEMETRY.http_span("probe", "GET", "https://user:secret@[::1]:8443/jwks?key=v") as span:
        assert span is not None
    [probe] = recorded.spans("probe")
    assert probe.attributes["url.full"] == "https://[::1]:8443/jwks"
    assert probe.attributes["server.address"] == "::1"
    assert probe.attributes["server.port"] == 8443


@pytest.mark.anyio
async def test_metadata_served_stale_while_discovery_fails_is_counted(
    recorded: Recorded,
) -> None:
    issuer = await served_again_after_an_outage(86400 + 1)  # the metadata is due too

    assert recorded.count(METADATA, oauthguard_result="ok") == 1
    assert recorded.count(METADATA, oauthguard_result="stale", oauthguard_issuer=issuer.issuer)
    assert recorded.count(JWKS, oauthguard_result="stale") == 1
