"""Keys are warmed on ASGI lifespan startup; startup never fails because of the issuer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from apps import RESOURCE, bearer, client, guard
from guards import build_guard
from starlette.applications import Starlette

from oauthguard import AccessToken
from oauthguard.testing import TestIssuer


def test_keys_are_fetched_during_startup() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    app = guard(issuer)
    with client(app) as api:
        assert [r.url.path for r in issuer.requests] == [
            "/.well-known/oauth-authorization-server",
            "/jwks",
        ]
        token = issuer.token(audience=RESOURCE)
        assert api.get("/mcp", headers=bearer(token)).status_code == 200
        assert len(issuer.requests) == 2


def test_startup_succeeds_when_the_issuer_is_down(caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    attempts: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    app = guard(issuer, http_client=httpx.AsyncClient(transport=httpx.MockTransport(down)))
    with caplog.at_level(logging.WARNING, logger="oauthguard"), client(app) as api:
        assert "could not warm the keys" in caplog.text
        assert attempts  # startup did try
        response = api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE)))
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"


def test_startup_waits_for_a_hanging_issuer_only_a_bounded_time() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    never = anyio.Event()

    async def hangs(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")  # pragma: no cover

    http = httpx.AsyncClient(transport=httpx.MockTransport(hangs))
    app = guard(issuer, http_client=http, http_timeout=0.05)
    with client(app) as api:
        assert api.get("/mcp").status_code == 401


def test_the_apps_own_lifespan_still_runs() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append(f"startup after {len(issuer.requests)} issuer requests")
        yield
        events.append("shutdown")

    app = build_guard(
        Starlette(lifespan=lifespan),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    with client(app):
        assert events == ["startup after 2 issuer requests"]
    assert events[-1] == "shutdown"


def test_startup_fetches_nothing_when_a_custom_verifier_is_given() -> None:
    class Accepting:
        async def verify(self, token: str) -> AccessToken:
            return AccessToken(
                subject="custom",
                client_id=None,
                scopes=frozenset(),
                audience=(RESOURCE,),
                issuer=None,
                expires_at=None,
                claims={},
            )

    issuer = TestIssuer(algorithms=("RS256",))
    with client(guard(issuer, verifier=Accepting())) as api:
        assert issuer.requests == []  # the key sets are unused: not warmed
        assert api.get("/mcp", headers=bearer("opaque")).json()["subject"] == "custom"
    assert issuer.requests == []
