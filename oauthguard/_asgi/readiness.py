"""The readiness check an orchestrator calls (``OAuthGuard(readiness_path=)``)."""

from __future__ import annotations

from oauthguard._asgi.types import Receive, Scope, Send, send_response
from oauthguard._core.server import ResourceServer
from oauthguard._http.paths import configured_path
from oauthguard._wire.errors import ConfigurationError

# Nothing of the configuration: no issuer, no URL, no reason, only the verdict.
_READY = b'{"status":"ready"}'
_NOT_READY = b'{"status":"unavailable"}'


class ReadinessEndpoint:
    """200 while ``server.ready()``, else 503 with ``Retry-After``; GET and HEAD only."""

    def __init__(self, server: ResourceServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await send_response(send, 405, [(b"allow", b"GET, HEAD")], b"")
            return
        ready = await self.server.ready()
        body = _READY if ready else _NOT_READY
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
        ]
        if not ready:
            headers.append((b"retry-after", b"5"))
        await send_response(send, 200 if ready else 503, headers, b"" if method == "HEAD" else body)


def readiness_path(value: object, taken: set[str]) -> str | None:
    """``OAuthGuard(readiness_path=)``: None, or a path in normal form that no metadata
    document uses."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigurationError(
            f"OAuthGuard(readiness_path=...) must be a path like '/ready', got {value!r}"
        )
    path = configured_path(value, "readiness_path")
    if path in taken:
        raise ConfigurationError(
            f"OAuthGuard(readiness_path={value!r}) is the path of a metadata document"
        )
    return path
