"""Cross-origin requests to ``TestIssuer`` from a browser page (the Fetch standard's CORS
protocol), for registered origins only.

A page on another origin (Swagger UI on the API's host, a browser-based MCP client) reads the
issuer's metadata and JWKS and posts to its token endpoint; the browser lets it read the
answers only when they carry ``Access-Control-Allow-Origin`` for the page's origin, and asks
first (a preflight ``OPTIONS``) before a POST with headers such as ``X-Requested-With``.
"""

from __future__ import annotations

from collections.abc import Collection, MutableSequence
from urllib.parse import urlsplit

from oauthguard._asgi.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = b"GET, POST"
ALLOWED_HEADERS = b"Accept, Authorization, Content-Type, DPoP, X-Requested-With"
EXPOSED_HEADERS = b"DPoP-Nonce, WWW-Authenticate"
PREFLIGHT_MAX_AGE = b"600"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The origin of an http(s) URL, serialized as a browser sends it in ``Origin`` (RFC 6454
    §6.2): lower-case scheme and host, the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http or https URL with a host")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


class AllowRegisteredOrigins:
    """ASGI middleware: CORS answers on ``paths`` for the origins in ``origins``.

    ``origins`` is read on every request, so origins registered later count at once. A
    registered origin is echoed back, never ``*``; no ``Access-Control-Allow-Credentials``
    is sent, as the issuer sets no cookies. Every answer on ``paths`` carries ``Vary:
    Origin``; an unregistered origin gets no CORS header, and its preflight a 403.
    """

    def __init__(self, app: ASGIApp, *, origins: Collection[str], paths: Collection[str]) -> None:
        self.app = app
        self.origins = origins
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = origin in self.origins
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await self.preflight(send, origin if allowed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = cors_headers(origin if allowed else None)
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def preflight(self, send: Send, origin: str | None) -> None:
        """Fetch standard §4.8 (CORS-preflight fetch): allow the methods and headers the
        issuer's endpoints use, for ``origin``; without one, refuse and name the fix."""
        headers = cors_headers(origin)
        headers.append((b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers"))
        if origin is None:
            body = b"this origin is not registered: TestIssuer.allow_origin(url) registers it"
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            status = 403
        else:
            headers += [
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ]
            body, status = b"", 204
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def cors_headers(origin: str | None) -> MutableSequence[tuple[bytes, bytes]]:
    """``Vary: Origin`` (the answer depends on it), and for an allowed ``origin`` the headers
    that let its pages read the answer."""
    headers = [(b"vary", b"Origin")]
    if origin is not None:
        headers += [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
        ]
    return headers
