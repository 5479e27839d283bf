"""RFC 9728 protected-resource metadata: the document and its well-known URL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from oauthguard._asgi.types import Receive, Scope, Send, send_response

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: insert the well-known segment between host and path.

    ``https://h/mcp`` -> ``https://h/.well-known/oauth-protected-resource/mcp``; a
    terminating ``/`` is removed first.
    """
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}{query}"


def metadata_path(resource: str) -> str:
    """The local path at which the document for ``resource`` is served, decoded as the
    request's path is (RFC 3986 §6.2.2.2)."""
    return WELL_KNOWN + unquote(urlsplit(resource).path.rstrip("/"))


def build_document(resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 9728 §2: ``resource`` first (§3.3: identical to the identifier), empty fields omitted."""
    document: dict[str, Any] = {"resource": resource}
    for name, value in fields.items():
        if value is None or value == [] or value == () or value is False:
            continue
        document[name] = list(value) if isinstance(value, (tuple, list, frozenset)) else value
    return document


class MetadataEndpoint:
    """Serves one document with CORS so browser-based clients can read it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.body = json.dumps(document, separators=(",", ":")).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        cors = [(b"access-control-allow-origin", b"*")]
        if method == "OPTIONS":
            requested = _header(scope, b"access-control-request-headers") or b"*"
            await send_response(
                send,
                204,
                cors
                + [
                    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
                    (b"access-control-allow-headers", requested),
                    (b"access-control-max-age", b"86400"),
                ],
                b"",
            )
            return
        if method not in ("GET", "HEAD"):
            await send_response(send, 405, cors + [(b"allow", b"GET, HEAD, OPTIONS")], b"")
            return
        headers = cors + [
            (b"content-type", b"application/json"),
            (b"cache-control", b"public, max-age=3600"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        await send_response(send, 200, headers, b"" if method == "HEAD" else self.body)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None
