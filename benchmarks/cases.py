"""The measured cases: ASGI apps with prebuilt requests, and the raw-verification floors.

Every app serves the same Starlette route; only what sits in front of it changes. Requests
are complete ASGI HTTP scopes built before timing, one per call (apps mutate their scope).
A case whose feature is not in this checkout raises ``Unavailable`` and its row says why.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, request_response

from oauthguard import JWT, InvalidToken, Issuer, OAuthGuard, ResourceServer
from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard._telemetry import Metrics, otel_metrics
from oauthguard.testing import TestIssuer, sign_jws

RESOURCE = "https://api.test/mcp"
METADATA_URL = "https://api.test/.well-known/oauth-protected-resource/mcp"
Scope = dict[str, Any]
App = Callable[..., Any]


class Unavailable(Exception):
    """The feature a case measures is not in this checkout."""


@dataclass
class AppCase:
    """An ASGI app and, per round, the requests to send it."""

    app: App
    requests: Callable[[int], list[Scope]]
    body: bytes = b""  # what ``receive`` hands the app, for every request
    lifespan: bool = False  # the app needs its ASGI lifespan started (the MCP SDK's does)
    status: int = 200  # what every response must be (a refusal case expects its refusal)
    #: The OpenTelemetry instruments bound while the case runs (None: nothing bound, as
    #: without the SDK); bound between batches, never while one is timed.
    telemetry: Metrics | None = None


@dataclass
class FloorCase:
    """A synchronous function and, per round, the inputs to call it with."""

    function: Callable[[Any], Any]
    inputs: Callable[[int], list[Any]]


async def hello(request: Request) -> Response:
    return PlainTextResponse("ok")


async def echo(request: Request) -> Response:
    """The MCP-like endpoint: it reads the JSON-RPC body, as the SDK's transport does."""
    return Response(await request.body(), media_type="application/json")


#: An MCP ``tools/call`` request body (JSON-RPC 2.0), as a client POSTs it.
MCP_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}},
    }
).encode()
#: The token's scopes on MCP requests: the endpoint's, and the ``echo`` tool's.
MCP_SCOPES = "mcp:tools tools:echo"
#: Tool scopes where the token lacks one tool's (``admin``): each call's body is read.
TWO_TOOLS = {"echo": "tools:echo", "admin": "tools:admin"}
MCP_HEADERS = (
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
    (b"mcp-protocol-version", b"2025-06-18"),
    (b"content-length", str(len(MCP_BODY)).encode()),
)


def scope_for(
    authorization: bytes | None, *extra: tuple[bytes, bytes], method: str = "GET"
) -> Scope:
    """An HTTPS request of the resource (a GET by default), as a server would hand it to
    the app."""
    headers = [(b"host", b"api.test"), (b"user-agent", b"bench/1"), (b"accept", b"*/*")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    headers.extend(extra)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("api.test", 443),
        "client": ("127.0.0.1", 50000),
    }


#: Header count of the flooded requests: what fits in about half a MiB of ``DPoP: x`` lines.
FLOOD = 60_000


def flooded_scope(name: bytes) -> Scope:
    """A request with no token and ``FLOOD`` headers ``name: x`` (refused by the guard)."""
    scope = scope_for(None)
    scope["headers"] = scope["headers"] + [(name, b"x")] * FLOOD
    return scope


def mcp_scope_for(authorization: bytes | None) -> Scope:
    """An MCP client's POST of a JSON-RPC message (its body is ``MCP_BODY``)."""
    return scope_for(authorization, *MCP_HEADERS[1:], MCP_HEADERS[0], method="POST")


def bearer(token: str) -> bytes:
    return b"Bearer " + token.encode("ascii")


class Tokens:
    """Pre-minted tokens: one disjoint slice per round, so each request's token is new."""

    def __init__(
        self,
        issuer: TestIssuer,
        alg: str,
        per_round: int,
        rounds: int,
        scope: str = "read",
        claims: dict[str, Any] | None = None,
    ) -> None:
        self.per_round = per_round
        self.items = [
            issuer.token(audience=RESOURCE, scope=scope, alg=alg, expires_in=3600, claims=claims)
            for _ in range(per_round * rounds)
        ]

    def round(self, index: int) -> list[str]:
        start = index * self.per_round
        return self.items[start : start + self.per_round]


class KeycloakTokens(Tokens):
    """A Keycloak stand-in and its access tokens (realm and client roles, the API and the
    resource in ``aud``), one disjoint slice per round as ``Tokens``."""

    BASE = "https://kc.example.com"

    def __init__(self, per_round: int, rounds: int) -> None:
        self.issuer = TestIssuer(self.BASE, profile="keycloak", algorithms=("RS256",))
        self.per_round = per_round
        self.items = [
            self.issuer.access_token(
                audience=[RESOURCE, "orders-api", "account"],
                scopes=["read"],
                roles=["clerk"],
                client_roles=["auditor"],
                expires_in=3600,
            )
            for _ in range(per_round * rounds)
        ]

    def app(self, preset: bool) -> App:
        """The guarded route trusting the stand-in through ``providers.keycloak(...)`` (the
        preset's claims, audiences and checks) or through its plain URL."""
        try:
            from oauthguard import providers
        except ImportError as exc:
            raise Unavailable("oauthguard.providers is not in this checkout") from exc
        if not preset:
            return guarded_app(self.issuer)
        keycloak = providers.keycloak(self.BASE, realm="test", client_id="orders-api")
        return guarded_app(self.issuer, servers=[keycloak])


# -- apps ------------------------------------------------------------------------------------
def bare_app() -> App:
    return Starlette(routes=[Route("/mcp", hello)])


def bare_post_app() -> App:
    """The MCP-like route alone: a POST whose body the endpoint reads."""
    return Starlette(routes=[Route("/mcp", echo, methods=["POST"])])


def protect_app(issuer: TestIssuer, **settings: Any) -> App:
    """The MCP-like route as an MCP user deploys oauthguard: ``oauthguard.mcp.protect``."""
    try:
        from oauthguard.mcp import protect
    except ImportError:
        raise Unavailable("oauthguard.mcp is not in this checkout") from None
    return protect(
        bare_post_app(),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        scopes="mcp:tools",
        http_client=issuer.http_client(),
        **settings,
    )


def guarded_app(
    issuer: TestIssuer,
    http_client: httpx.AsyncClient | None = None,
    servers: list[Any] | None = None,
    **settings: Any,
) -> App:
    """The route behind ``OAuthGuard``, with a ``ResourceServer`` of ``settings`` trusting
    ``servers`` (default: the issuer's URL)."""
    server = ResourceServer(
        resource=RESOURCE,
        authorization_servers=servers or [issuer.issuer],
        http_client=http_client or issuer.http_client(),
        **settings,
    )
    guard = Middleware(OAuthGuard, server=server)
    app = Starlette(routes=[Route("/mcp", hello)], middleware=[guard])
    app.build_middleware_stack()  # raises here, not on the first request, for bad settings
    return app


#: Claims shaped like a Keycloak access token with Auth0-style permissions beside them.
PROVIDER_CLAIMS: dict[str, Any] = {
    "azp": "orders-api",
    "client_id": None,
    "permissions": ["orders:read", "orders:write"],
    "realm_access": {"roles": ["offline_access", "user"]},
    "resource_access": {"orders-api": {"roles": ["clerk"]}},
}


#: The scope and role claims of ``PROVIDER_CLAIMS``, read for every plain issuer URL.
PROVIDER_JWT = JWT(
    scopes_claims=("scope", "permissions"),
    roles_claims=("realm_access.roles", "resource_access.orders-api.roles"),
)


def access_tokens_only(header: Any, claims: Any) -> None:
    """A provider check such as the presets add (Cognito's token_use)."""
    if claims.get("token_use", "access") != "access":
        raise InvalidToken("the token is not an access token (token_use)")


def issuer_app(issuer: TestIssuer) -> App:
    """The route behind ``OAuthGuard`` with an ``Issuer`` that sets what providers need."""
    configured = Issuer(
        issuer.issuer,
        audiences=("orders-api",),
        clients=("orders-api",),
        scopes_claims=PROVIDER_JWT.scopes_claims,
        roles_claims=PROVIDER_JWT.roles_claims,
        checks=(access_tokens_only,),
    )
    server = ResourceServer(
        resource=RESOURCE, authorization_servers=[configured], http_client=issuer.http_client()
    )
    app = Starlette(
        routes=[Route("/mcp", hello)], middleware=[Middleware(OAuthGuard, server=server)]
    )
    app.build_middleware_stack()
    return app


class NaiveJWTMiddleware:
    """What a hand-written pure-ASGI middleware does: ``jwt.decode`` with the key in hand."""

    def __init__(self, app: App, *, key: Any, issuer: str) -> None:
        self.app, self.key, self.issuer = app, key, issuer

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        token = next(
            (
                value[7:].decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization" and value[:7].lower() == b"bearer "
            ),
            None,
        )
        try:
            claims = jwt.decode(
                token or "", self.key, algorithms=["RS256"], audience=RESOURCE, issuer=self.issuer
            )
        except jwt.InvalidTokenError:
            await PlainTextResponse("no", 401)(scope, receive, send)
            return
        scope["auth"] = claims
        await self.app(scope, receive, send)


def naive_app(issuer: TestIssuer) -> App:
    key = issuer.private_key("RS256").public_key()
    return Starlette(
        routes=[Route("/mcp", hello)],
        middleware=[Middleware(NaiveJWTMiddleware, key=key, issuer=issuer.issuer)],
    )


class PyJWTTokenVerifier:
    """The SDK's ``TokenVerifier`` protocol on PyJWT, as MCP servers write it: ``jwt.decode``
    with the issuer's public key, checking ``aud``, ``iss`` and ``exp``."""

    def __init__(self, issuer: TestIssuer, key_for: Callable[[str], Any]) -> None:
        self.issuer, self.key_for = issuer.issuer, key_for

    async def verify_token(self, token: str) -> Any:
        from mcp.server.auth.provider import AccessToken

        try:
            claims = jwt.decode(
                token,
                self.key_for(token),
                algorithms=["RS256"],
                audience=RESOURCE,
                issuer=self.issuer,
            )
        except jwt.InvalidTokenError:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"],
            resource=RESOURCE,
            subject=claims.get("sub"),
            claims=claims,
        )


def static_key_verifier(issuer: TestIssuer) -> PyJWTTokenVerifier:
    """One public key given in advance (no JWKS, so no key rotation)."""
    key = issuer.private_key("RS256").public_key()
    return PyJWTTokenVerifier(issuer, lambda _: key)


def jwks_verifier(issuer: TestIssuer) -> PyJWTTokenVerifier:
    """The issuer's keys by ``kid`` from its JWKS through PyJWT's ``PyJWKClient``, keys and
    key set cached, as production servers do it. The JWKS is handed over in-process (its
    fetch is not what is measured)."""
    document = issuer.jwks()

    class InProcessJWKClient(jwt.PyJWKClient):
        def fetch_data(self) -> Any:
            return document

    client = InProcessJWKClient(issuer.base + "/jwks", cache_keys=True)
    return PyJWTTokenVerifier(issuer, lambda token: client.get_signing_key_from_jwt(token).key)


def mcp_sdk_app(issuer: TestIssuer, verifier: Any = None, *, post: bool = False) -> App:
    """The MCP SDK's own auth stack, as its server wires it, with a PyJWT ``TokenVerifier``
    (by default one with a static key; or ``verifier``). With ``post``, around the MCP-like
    POST route, needing ``mcp:tools`` like ``protect_app``."""
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
    from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
    from pydantic import AnyHttpUrl
    from starlette.middleware.authentication import AuthenticationMiddleware

    endpoint = RequireAuthMiddleware(
        request_response(echo if post else hello),
        ["mcp:tools"] if post else [],
        AnyHttpUrl(METADATA_URL),
    )
    backend = BearerAuthBackend(verifier or static_key_verifier(issuer))
    route = Route("/mcp", endpoint, methods=["POST"] if post else None)
    return Starlette(
        routes=[route],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=backend),
            Middleware(AuthContextMiddleware),
        ],
    )


def mcp_sdk_endpoint(issuer: TestIssuer, guard: str | None = None) -> App:
    """The MCP SDK's own streamable-HTTP endpoint (stateless, JSON responses) with an ``echo``
    tool: a real MCP request, for scale. ``guard="protect"`` puts ``protect()`` in front."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        return text

    app = server.streamable_http_app(stateless_http=True, json_response=True, host="api.test")
    if guard is None:
        return app
    from oauthguard.mcp import protect

    return protect(
        app,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        scopes="mcp:tools",
        tool_scopes={"echo": "tools:echo"},
        http_client=issuer.http_client(),
    )


def mcp_adapter_app(issuer: TestIssuer) -> App:
    """The MCP SDK's own auth stack with oauthguard's adapter as its ``TokenVerifier``."""
    try:
        from oauthguard.mcp import MCPTokenVerifier  # type: ignore[import-not-found]
    except ImportError:
        raise Unavailable("oauthguard.mcp is not in this checkout") from None
    verifier = MCPTokenVerifier(
        resource=RESOURCE, authorization_servers=[issuer.issuer], http_client=issuer.http_client()
    )
    return mcp_sdk_app(issuer, verifier)


# -- DPoP (RFC 9449) ------------------------------------------------------------------------
def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, without whitespace."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(
        json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    return b64url_encode(digest)


class DPoPClient:
    """A client key, a token bound to it, and fresh proofs for ``GET RESOURCE``."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
        self.token = issuer.token(
            audience=RESOURCE,
            scope="read",
            expires_in=3600,
            claims={"cnf": {"jkt": thumbprint(self.jwk)}},
        )
        ath = hashlib.sha256(self.token.encode()).digest()
        self.ath = b64url_encode(ath)

    def proof(self) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": "GET",
            "htu": RESOURCE,
            "iat": int(time.time()),
            "ath": self.ath,
        }
        return sign_jws(header, claims, self.key)

    def requests(self, count: int) -> list[Scope]:
        authorization = b"DPoP " + self.token.encode("ascii")
        return [
            scope_for(authorization, (b"dpop", self.proof().encode("ascii"))) for _ in range(count)
        ]


def dpop_app(issuer: TestIssuer) -> App:
    try:
        return guarded_app(issuer, dpop="allowed")
    except TypeError as exc:
        raise Unavailable(f"DPoP is not in this checkout ({exc})") from None


def dpop_floor(client: DPoPClient) -> Callable[[str], str]:
    """One ES256 proof verification with the key in hand, plus the RFC 7638 thumbprint."""
    public = client.key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())

    def verify(proof: str) -> str:
        head, payload, signature = proof.split(".")
        raw = b64url_decode(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{payload}".encode("ascii"), algorithm)
        return thumbprint(client.jwk)

    return verify


# -- introspection (RFC 7662) ---------------------------------------------------------------
class IntrospectionTransport(httpx.AsyncBaseTransport):
    """Answers the issuer's introspection endpoint; everything else goes to the issuer."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer, self.inner, self.calls = issuer, issuer.transport(), 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/introspect":
            return await self.inner.handle_async_request(request)
        self.calls += 1
        return httpx.Response(
            200,
            json={
                "active": True,
                "iss": self.issuer.issuer,
                "aud": RESOURCE,
                "sub": "user-1",
                "client_id": "bench",
                "scope": "read",
                "exp": int(time.time()) + 3600,
            },
        )


def introspection_app(issuer: TestIssuer) -> App:
    try:
        from oauthguard import Introspection  # type: ignore[attr-defined]
    except ImportError:
        raise Unavailable("introspection is not in this checkout") from None
    settings = Introspection(
        endpoint=issuer.base + "/introspect", client_id="bench", client_secret="bench-secret"
    )
    client = httpx.AsyncClient(transport=IntrospectionTransport(issuer))
    return guarded_app(issuer, http_client=client, introspection=settings)


# -- floors: the signature alone, with the key object in hand -------------------------------
def signature_floor(issuer: TestIssuer, alg: str) -> Callable[[tuple[bytes, bytes]], None]:
    public = issuer.private_key(alg).public_key()
    if alg == "RS256":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

        def verify_rsa(item: tuple[bytes, bytes]) -> None:
            public.verify(item[1], item[0], pkcs1, sha256)

        return verify_rsa
    ecdsa = ec.ECDSA(hashes.SHA256())

    def verify_ec(item: tuple[bytes, bytes]) -> None:
        signature = item[1]  # JWS carries r || s (RFC 7518 §3.4); OpenSSL wants DER
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, item[0], ecdsa)

    return verify_ec


def signed_parts(tokens: list[str]) -> Iterator[tuple[bytes, bytes]]:
    """(signing input, signature) of each token, split before timing."""
    for token in tokens:
        head, payload, signature = token.split(".")
        yield f"{head}.{payload}".encode("ascii"), b64url_decode(signature)


# -- introspection answers shared through Redis ---------------------------------------------
#: Whether rows may start a service of their own (``run.py --no-services`` says not).
START_SERVICES = True


def _start_redis() -> str:
    """A redis-server of the benchmark's own on a free loopback port, stopped at exit."""
    import atexit
    import shutil
    import socket
    import subprocess

    if not START_SERVICES:
        raise Unavailable("--no-services: no redis-server started")
    if shutil.which("redis-server") is None:
        raise Unavailable("no redis-server on this machine")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise Unavailable("redis-server did not start")


def introspection_redis_app(issuer: TestIssuer) -> App:
    """Introspection with no cache in this process: every request reads the token's answer
    from Redis (the first one, in the warm-up round, introspects and writes it)."""
    try:
        from oauthguard import Introspection
        from oauthguard.redis import RedisIntrospectionCache
    except ImportError:
        raise Unavailable("RedisIntrospectionCache is not in this checkout") from None
    settings = Introspection(
        endpoint=issuer.base + "/introspect",
        client_id="bench",
        client_secret="bench-secret",
        cache_size=0,  # no local cache: the verified-token cache keeps nothing either
        shared_cache=RedisIntrospectionCache.from_url(_start_redis()),
    )
    client = httpx.AsyncClient(transport=IntrospectionTransport(issuer))
    return guarded_app(issuer, http_client=client, introspection=settings)


def otel_api() -> None:
    """``Unavailable`` without the OpenTelemetry API (the ``otel`` extra)."""
    if otel_metrics is None:
        raise Unavailable("opentelemetry-api is not installed: pip install '.[otel]'")


def otel_sdk_metrics() -> Metrics:
    """oauthguard's instruments from an SDK meter provider with an in-memory reader."""
    otel_api()
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        raise Unavailable("opentelemetry-sdk is not installed") from None
    return Metrics.of(MeterProvider(metric_readers=[InMemoryMetricReader()]))
