"""ASGI type aliases and the ways this package writes a response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from oauthguard._dpop.nonces import nonce_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a complete HTTP response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, headers: Headers, body: bytes
) -> None:
    """Refuse a WebSocket before accept: an HTTP response where the server supports the
    denial-response extension, otherwise close with 1008 (policy violation)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 1008})


async def send_refusal(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    headers: Headers,
    body: bytes,
) -> None:
    """Send a refusal: an HTTP response, or a WebSocket denied before accept."""
    if scope["type"] == "websocket":
        await deny_websocket(scope, receive, send, status, headers, body)
    else:
        await send_response(send, status, headers, body)


def sending_nonce(send: Send, nonce: str) -> Send:
    """A ``send`` that puts a fresh DPoP nonce on the response (RFC 9449 §8.2, §9)."""

    async def send_with_nonce(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": nonce_headers(message.get("headers", []), nonce)}
        await send(message)

    return send_with_nonce
