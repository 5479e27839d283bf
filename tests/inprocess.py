"""A blocking client that calls an ASGI app in this thread, through ``httpx.ASGITransport``.

Starlette's ``TestClient`` without ``with`` starts a thread (a blocking portal) for every
request, ~3.5 ms; this runs each request on an event loop of its own in the calling thread,
well under a millisecond. Like that ``TestClient`` it sends no lifespan events, and an
exception the app raises reaches the test unless ``raise_server_exceptions=False`` (then it
is a 500). For tests where the network is not what is tested.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class InProcessClient:
    """``get``/``post``/``request`` as on ``httpx.Client``, answered by ``app`` in process."""

    def __init__(
        self, app: Any, base_url: str = "https://api.test", *, raise_server_exceptions: bool = True
    ) -> None:
        self.app, self._base_url, self._raise = app, base_url, raise_server_exceptions

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        return asyncio.run(self._send(method, url, options))

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    async def _send(self, method: str, url: str, options: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=self._raise)
        async with httpx.AsyncClient(transport=transport, base_url=self._base_url) as http:
            return await http.request(method, url, **options)


async def asgi_get(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    """GET ``path`` (no query) of ``app`` at https://api.test, calling the ASGI app itself:
    for floods of requests, where a client's own work per request would outweigh the app's.
    The answer is read whole into an ``httpx.Response``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "https",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.test")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "server": ("api.test", 443),
        "client": ("127.0.0.1", 50000),
    }
    sent = await messages_of(app, scope)
    start, *bodies = sent
    assert start["type"] == "http.response.start", start
    body = b"".join(message.get("body", b"") for message in bodies)
    return httpx.Response(start["status"], headers=start.get("headers", []), content=body)


async def messages_of(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``app`` sends for ``scope``, a request without a body: its ASGI messages."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
