"""A small RFC 7662 authorization server for the introspection tests, served over loopback.

It publishes RFC 8414 metadata (with ``introspection_endpoint``) and a JWKS through a
``TestIssuer``, authenticates the resource server by the configured method (RFC 6749
§2.3.1 Basic with form-encoded credentials, client_secret_post, or an RFC 7523 assertion
checked against the client's public key), answers from ``responses`` (RFC 7662 §2.2, or
RFC 9701 signed JWTs when asked), and counts the calls. ``mode`` and ``delay`` break it on purpose.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import anyio
import httpx
import jwt as pyjwt
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import free_port, serve

from oauthguard import Introspection, Issuer, OAuthGuard
from oauthguard._http.fetch import MAX_DOCUMENT_BYTES
from oauthguard.testing import TestIssuer, sign_jws

RESOURCE = "https://api.test/mcp"
#: Both need RFC 6749 §2.3.1 form-encoding before they go into a Basic header.
CLIENT_ID = "resource server:1"
CLIENT_SECRET = "s3cr:et &+/=é"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNED_TYPE = "application/token-introspection+jwt"


class IntrospectionServer:
    """Configure, then serve ``app`` on ``port`` (the issuer URL is built from it)."""

    def __init__(self, port: int, *, client_id: str, client_secret: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.endpoint = self.base + "/introspect"
        self.issuer = TestIssuer(self.base)
        self.client_id = client_id
        self.client_secret = client_secret
        # This server's /introspect comes first: it answers instead of TestIssuer's own.
        self.app = Starlette(
            routes=[
                Route("/introspect", self._introspect, methods=["POST"]),
                *self.issuer.app.routes,
            ]
        )
        self._generation = 0
        self.reset()

    def reset(self) -> None:
        """Back to a healthy server expecting client_secret_basic, with no tokens; requests
        still held by ``delay`` are answered now."""
        self._generation += 1
        self.issuer.extra_metadata = {"introspection_endpoint": self.endpoint}
        self.auth_method = "client_secret_basic"
        self.client_public_key: Any = None
        self.responses: dict[str, dict[str, Any]] = {}
        #: "normal", an HTTP status ("500", "503", "400", "403", "404", "429"), "redirect", "html",
        #: "empty" (``{}``), "json-only" (ignores an RFC 9701 Accept) or
        #: "unsupported_token_type" (a 400 with that error), "huge" (an answer past the
        #: 1 MiB cap), "gzip" (the answer gzip-encoded, though not asked for) or
        #: "gzip-bomb" (a small gzip body that expands past the cap).
        self.mode = "normal"
        #: Per token: the HTTP status answered for it whatever the mode (a server that
        #: fails on one odd token); ``error_headers`` go with every error status.
        self.statuses: dict[str, int] = {}
        self.error_headers: dict[str, str] = {}
        self.delay = 0.0
        self.calls = 0
        self.forms: list[dict[str, str]] = []
        self.accepts: list[str] = []
        self.accept_encodings: list[str] = []
        self.jtis: list[str] = []
        self.auth_failures: list[str] = []
        #: RFC 9701 overrides: header and claim changes, and the key that signs.
        self.signed_header: dict[str, Any] = {}
        self.signed_claims: dict[str, Any] = {}
        self.signing_key: Any = None

    # -- client authentication (RFC 7662 §2.1) ------------------------------------------
    def _authenticated(self, request: Request, form: dict[str, str]) -> bool:
        try:
            if self.auth_method == "client_secret_basic":
                return self._basic(request.headers.get("authorization", ""), form)
            if self.auth_method == "client_secret_post":
                return (
                    form.get("client_id") == self.client_id
                    and form.get("client_secret") == self.client_secret
                    and "authorization" not in request.headers
                )
            return self._assertion(form)
        except Exception as exc:
            self.auth_failures.append(f"{type(exc).__name__}: {exc}")
            return False

    def _basic(self, header: str, form: dict[str, str]) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or "client_secret" in form:
            raise ValueError("no Basic credentials, or two authentication methods")
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
        return (unquote_plus(client_id), unquote_plus(secret)) == (
            self.client_id,
            self.client_secret,
        )

    def _assertion(self, form: dict[str, str]) -> bool:
        """RFC 7523 §3: signature, iss = sub = client_id, aud, exp, a jti never seen."""
        if form.get("client_assertion_type") != JWT_BEARER:
            raise ValueError("wrong client_assertion_type")
        claims = pyjwt.decode(
            form["client_assertion"],
            self.client_public_key,
            algorithms=["RS256", "PS256", "ES256", "ES384", "EdDSA"],
            audience=self.endpoint,
            issuer=self.client_id,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
        if claims["sub"] != self.client_id or claims["jti"] in self.jtis:
            raise ValueError("wrong sub or a replayed jti")
        if claims["exp"] > time.time() + 300:
            raise ValueError("the assertion lives too long")
        self.jtis.append(claims["jti"])
        return True

    # -- the endpoint ---------------------------------------------------------------------
    async def _introspect(self, request: Request) -> Response:
        self.calls += 1
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.forms.append(form)
        self.accepts.append(request.headers.get("accept", ""))
        self.accept_encodings.append(request.headers.get("accept-encoding", ""))
        if self.delay:
            await self._hold()
        if not self._authenticated(request, form):
            return JSONResponse(
                {"error": "invalid_client"}, status_code=401, headers={"www-authenticate": "Basic"}
            )
        if self.mode == "unsupported_token_type":  # what oidc-provider says of a JWT
            return JSONResponse({"error": "unsupported_token_type"}, status_code=400)
        status = self.statuses.get(form.get("token", ""))
        if status is None and self.mode in ("500", "503", "400", "403", "404", "429"):
            status = int(self.mode)
        if status is not None:
            return JSONResponse(
                {"error": "refused"}, status_code=status, headers=self.error_headers
            )
        if self.mode == "redirect":
            return Response(status_code=307, headers={"location": self.endpoint + "/v2"})
        if self.mode == "html":
            return Response("<html><body>Sign in</body></html>", media_type="text/html")
        if self.mode == "empty":
            return JSONResponse({})
        members = self.responses.get(form.get("token", ""), {"active": False})
        if self.mode in ("huge", "gzip", "gzip-bomb"):
            return _oversized(members, self.mode)
        if SIGNED_TYPE in request.headers.get("accept", "") and self.mode != "json-only":
            return Response(self.signed(members), media_type=SIGNED_TYPE)
        if self.mode in ("escaped", "bom"):  # every non-ASCII character as a \u escape
            escaped = json.dumps(members).encode()
            body = b"\xef\xbb\xbf" + escaped if self.mode == "bom" else escaped
            return Response(body, media_type="application/json")
        return JSONResponse(members)

    async def _hold(self) -> None:
        """Wait ``delay`` seconds, or less if ``reset`` comes first: a request a test left
        hanging would otherwise hold up the next test, or the server's stop."""
        generation = self._generation
        with anyio.move_on_after(self.delay):
            while self._generation == generation:
                await anyio.sleep(0.01)

    def signed(self, members: dict[str, Any]) -> str:
        """RFC 9701 §5: a JWT with typ token-introspection+jwt around the members."""
        kid = self.issuer.default_kid["RS256"]
        header = {
            "alg": "RS256",
            "typ": "token-introspection+jwt",
            "kid": kid,
            **self.signed_header,
        }
        claims = {
            "iss": self.base,
            "aud": self.client_id,
            "iat": int(time.time()),
            "token_introspection": members,
            **self.signed_claims,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        return sign_jws(header, claims, self.signing_key or self.issuer.private_key("RS256"))


def _oversized(members: dict[str, Any], mode: str) -> Response:
    """``members`` padded past the 1 MiB cap ("huge", "gzip-bomb") and gzip-encoded (the
    bomb: 8 MiB that compress to a few KiB) or sent as is; "gzip": gzipped, not padded."""
    padding = {"huge": MAX_DOCUMENT_BYTES, "gzip-bomb": 8 * MAX_DOCUMENT_BYTES}.get(mode, 0)
    body = json.dumps({**members, "padding": " " * padding}).encode()
    if mode == "huge":
        return Response(body, media_type="application/json")
    return Response(
        gzip.compress(body), media_type="application/json", headers={"content-encoding": "gzip"}
    )


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def running_server() -> Iterator[IntrospectionServer]:
    """An ``IntrospectionServer`` served by uvicorn on a free loopback port."""
    port = free_port()
    server = IntrospectionServer(port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with serve(server.app, port=port):
        try:
            yield server
        finally:
            server.reset()  # answers the requests still held, so the server stops at once


def active(server: IntrospectionServer, token: str, now: float, **members: Any) -> None:
    """Make the server call ``token`` active, for our resource, for an hour from ``now``;
    ``members`` are added, or removed when None."""
    server.responses[token] = {
        "active": True,
        "iss": server.base,
        "aud": RESOURCE,
        "sub": "user-7",
        "client_id": "app-3",
        "scope": "read write",
        "exp": int(now + 3600),
        "iat": int(now),
        **members,
    }
    for name in [name for name, value in members.items() if value is None]:
        del server.responses[token][name]


async def whoami(request: Request) -> Response:
    token = request.auth
    return JSONResponse(
        {
            "sub": token.subject,
            "client_id": token.client_id,
            "scopes": sorted(token.scopes),
            "issuer": token.issuer,
            "audience": list(token.audience),
            "expires_at": token.expires_at,
            "jkt": token.jkt,
            "claims": dict(token.claims),
        }
    )


@contextlib.asynccontextmanager
async def guarded(
    server: IntrospectionServer,
    *,
    clock: Callable[[], float] | None = None,
    token_format: str | None = None,
    follow_redirects: bool = False,
    issuer: Issuer | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, OAuthGuard]]:
    """A client for an app behind a guard that introspects at ``server`` over loopback
    (``issuer``: its ``Issuer(...)``, rather than its plain URL)."""
    settings.setdefault("client_id", CLIENT_ID)
    if settings.get("auth_method", "client_secret_basic").startswith("client_secret"):
        settings.setdefault("client_secret", CLIENT_SECRET)
    async with httpx.AsyncClient(follow_redirects=follow_redirects) as http:
        guard = build_guard(
            Starlette(routes=[Route("/mcp", whoami)]),
            resource=RESOURCE,
            authorization_servers=[issuer or server.base],
            token_format=token_format,
            introspection=Introspection(**settings),
            http_client=http,
            clock=clock,
        )
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            yield client, guard


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_unavailable(response: httpx.Response, says: str) -> None:
    """503 with Retry-After and a JSON error; never a pass, a 401 or a 500."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("the token could not be introspected")
    assert says in body["error_description"]
    assert "Traceback" not in response.text
