"""Over real HTTP on loopback: the issuer and the protected app both served by uvicorn."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from apps import Clock, bearer, inner_app
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from support import assert_refused, free_port, serve

from oauthguard._http.fetch import MAX_DOCUMENT_BYTES
from oauthguard._verify.discovery import metadata_urls
from oauthguard.testing import TestIssuer


@contextlib.contextmanager
def issuer_on_loopback() -> Iterator[TestIssuer]:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("RS256", "ES256"))
    with serve(issuer.app, port=port):
        yield issuer


@contextlib.contextmanager
def protected(issuer: str, **options: Any) -> Iterator[tuple[httpx.Client, str]]:
    """The demo app behind the guard, on loopback; yields a client and the resource URL."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    app = build_guard(inner_app(), resource=resource, authorization_servers=[issuer], **options)
    with serve(app, port=port) as base, httpx.Client(base_url=base, timeout=10) as http:
        yield http, resource


def test_challenge_discovery_and_a_token_over_real_http() -> None:
    with issuer_on_loopback() as issuer, protected(issuer.issuer) as (http, resource):
        refused = http.get("/mcp")
        params = assert_refused(refused, 401, None)
        document = httpx.get(params["resource_metadata"]).json()
        assert document["resource"] == resource
        [as_url] = document["authorization_servers"]
        as_metadata = httpx.get(metadata_urls(as_url)[0])
        assert as_metadata.json()["issuer"] == issuer.issuer
        token = issuer.token(audience=resource, scope="read")
        ok = http.get("/mcp", headers=bearer(token))
        assert ok.status_code == 200, ok.text
        assert ok.json()["scopes"] == ["read"]
        es = http.get(
            "/read", headers=bearer(issuer.token(audience=resource, scope="read", alg="ES256"))
        )
        assert es.text == "read ok"
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        bad = assert_refused(http.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
        assert "signature" in bad["error_description"]
        oversized = http.get("/mcp", headers=bearer("A" * 20_000))
        params = assert_refused(oversized, 401, "invalid_token")
        assert "longer than 16384 bytes" in params["error_description"]
        rotated_kid = issuer.rotate("RS256")
        rotated = issuer.token(audience=resource)
        assert http.get("/mcp", headers=bearer(rotated)).status_code == 200
        assert rotated_kid in issuer.jwks()["keys"][-1]["kid"]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text


def a_token_for(issuer_url: str, resource: str) -> str:
    signer = TestIssuer(issuer_url, algorithms=("RS256",))
    return signer.token(audience=resource)


def test_an_issuer_that_is_down_is_503() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with protected(down) as (http, resource):
        token = a_token_for(down, resource)
        assert_unavailable(http.get("/mcp", headers=bearer(token)))
        assert_refused(http.get("/mcp"), 401, None)


def test_a_slow_issuer_is_503_after_the_timeout() -> None:
    release = threading.Event()

    async def slow(request: Request) -> Response:
        await anyio.to_thread.run_sync(release.wait, abandon_on_cancel=True)
        return PlainTextResponse("too late")

    slow_app = Starlette(routes=[Route("/{path:path}", slow)])
    with serve(slow_app) as slow_url, protected(slow_url, http_timeout=0.05) as (http, resource):
        try:
            assert_unavailable(http.get("/mcp", headers=bearer(a_token_for(slow_url, resource))))
        finally:
            release.set()


class BrokenIssuer:
    """Correct metadata; a JWKS endpoint that misbehaves as told."""

    def __init__(self, issuer: TestIssuer, jwks: str) -> None:
        self.issuer, self.jwks = issuer, jwks
        self.app = Starlette(
            routes=[Route(issuer.metadata_path, self.metadata), Route("/jwks", self.keys)]
        )

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(self.issuer.metadata())

    async def keys(self, request: Request) -> Response:
        if self.jwks == "500":
            return PlainTextResponse("internal error", status_code=500)
        if self.jwks == "html":
            return Response("<html><body>Sign in</body></html>", media_type="text/html")
        if self.jwks.startswith("oversized"):
            # Good keys, then a junk key that takes the document past the 1 MiB cap.
            junk = {"kty": "oct", "kid": "junk", "k": "A" * (MAX_DOCUMENT_BYTES + 1)}
            body = JSONResponse({"keys": [*self.issuer.jwks()["keys"], junk]}).body
            if self.jwks == "oversized":
                return Response(body, media_type="application/json")  # Content-Length
            chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
            return StreamingResponse(chunks, media_type="application/json")  # chunked
        broken = [
            {"kty": "RSA", "kid": "broken", "n": "@@", "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        ]
        return JSONResponse({"keys": broken + self.issuer.jwks()["keys"]})


@contextlib.contextmanager
def broken_issuer(jwks: str) -> Iterator[TestIssuer]:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("RS256",))
    with serve(BrokenIssuer(issuer, jwks).app, port=port):
        yield issuer


@pytest.mark.parametrize("jwks", ["500", "html", "oversized", "oversized stream"])
def test_an_issuer_whose_jwks_fails_is_503(jwks: str) -> None:
    with broken_issuer(jwks) as issuer, protected(issuer.issuer) as (http, resource):
        assert_unavailable(http.get("/mcp", headers=bearer(issuer.token(audience=resource))))


def test_an_issuer_whose_metadata_is_500_is_503() -> None:
    async def error(request: Request) -> Response:
        return PlainTextResponse("internal error", status_code=500)

    with (
        serve(Starlette(routes=[Route("/{path:path}", error)])) as url,
        protected(url) as (http, resource),
    ):
        assert_unavailable(http.get("/mcp", headers=bearer(a_token_for(url, resource))))


def test_a_jwks_with_broken_keys_still_serves_the_good_ones() -> None:
    with broken_issuer("broken keys") as issuer, protected(issuer.issuer) as (http, resource):
        assert http.get("/mcp", headers=bearer(issuer.token(audience=resource))).status_code == 200
        forged = issuer.token(audience=resource, headers={"kid": "broken"})
        params = assert_refused(http.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
        assert "no signing key" in params["error_description"]


def test_keys_outlive_an_issuer_outage_and_a_late_issuer_is_found() -> None:
    clock = Clock()
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("RS256",))
    with protected(issuer.issuer, clock=clock) as (http, resource):
        token = issuer.token(audience=resource, now=clock.now, expires_in=7 * 86400)
        # The issuer is not up yet: 503, and it is asked again after the cooldown.
        assert_unavailable(http.get("/mcp", headers=bearer(token)))
        with serve(issuer.app, port=port):
            assert_unavailable(http.get("/mcp", headers=bearer(token)))
            clock.advance(30)
            assert http.get("/mcp", headers=bearer(token)).status_code == 200
        # The issuer is gone again; past the JWKS lifetime the last good keys still serve.
        clock.advance(issuer.jwks_max_age or 0)
        fresh = issuer.token(audience=resource, now=clock.now)
        assert http.get("/mcp", headers=bearer(fresh)).status_code == 200
        # ... but not past jwks_max_stale.
        clock.advance(86400)
        late = issuer.token(audience=resource, now=clock.now)
        assert_unavailable(http.get("/mcp", headers=bearer(late)))
