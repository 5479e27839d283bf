"""Shared pieces of the core guard's tests: a settable clock and a small protected app."""

from __future__ import annotations

import contextlib
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from guards import build_guard
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from oauthguard import OAuthGuard
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/mcp"
NOW = 1_700_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def whoami(request: Request) -> Response:
    token = request.auth
    return JSONResponse(
        {
            "subject": token.subject,
            "client_id": token.client_id,
            "scopes": sorted(token.scopes),
            "roles": sorted(token.roles),
            "audience": list(token.audience),
            "issuer": token.issuer,
            "expires_at": token.expires_at,
            "scheme": token.scheme,
            "user": request.user.display_name,
            "authenticated": request.user.is_authenticated,
        }
    )


@requires("read")
async def read_only(request: Request) -> Response:
    return PlainTextResponse("read ok")


async def public(request: Request) -> Response:
    return JSONResponse({"authenticated": request.user.is_authenticated})


async def boom(request: Request) -> Response:
    raise RuntimeError("the application itself failed")


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.auth.subject}")
    await websocket.close()


def inner_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/mcp", whoami, methods=["GET", "POST"]),
            Route("/read", read_only),
            Route("/boom", boom),
            Route("/health", public),
            Route("/docs/{rest:path}", public),
            WebSocketRoute("/ws", echo_socket),
        ]
    )


def guard(issuer: TestIssuer, clock: Clock | None = None, **options: Any) -> OAuthGuard:
    """The guard around ``inner_app``, reaching ``issuer`` in-process."""
    options.setdefault("http_client", issuer.http_client())
    return build_guard(
        inner_app(),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        clock=clock,
        **options,
    )


def client(app: Any, **options: Any) -> TestClient:
    """A ``TestClient`` for ``app`` whose requests run on the test's one event loop thread.

    A bare ``TestClient`` starts a thread and an event loop for each request (~1.7 ms of CPU);
    the clients of one test share one, which ``close_test_loop`` ends after the test.
    """
    test_client = TestClient(app, base_url="https://api.test", **options)
    test_client.portal = _test_loop(test_client.async_backend)
    return test_client


_loops = contextlib.ExitStack()
_portals: dict[str, BlockingPortal] = {}


def _test_loop(backend: dict[str, Any]) -> BlockingPortal:
    name = str(backend.get("backend", "asyncio"))
    if name not in _portals:
        _portals[name] = _loops.enter_context(start_blocking_portal(**backend))
    return _portals[name]


def close_test_loop() -> None:
    """End the event loop thread the test's clients shared, cancelling what still runs there."""
    _portals.clear()
    _loops.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
