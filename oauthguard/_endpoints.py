"""Starlette glue for ``require(...)``: the refusal response, protected ASGI apps, and
``GuardError`` handling inside the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from oauthguard._asgi import ASGIApp, Receive, Scope, Send
from oauthguard.errors import GuardError

if TYPE_CHECKING:
    from oauthguard.middleware import OAuthGuard
    from oauthguard.policy import Requirement


def connection_of(
    requirement: Requirement, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> HTTPConnection:
    """The ``Request`` or ``WebSocket`` among a decorated endpoint's arguments."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError(
        f"{requirement!r} decorates Starlette endpoints (taking a Request or a "
        "WebSocket); with FastAPI use Depends(require(...)) instead"
    )


class Refusal(Response):
    """The response of a refused endpoint: the guard answers it (its challenge, its body),
    so it is the same as the guard's own refusals."""

    def __init__(self, guard: OAuthGuard, error: GuardError) -> None:
        super().__init__(status_code=error.status)
        self.guard = guard
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard.refuse(scope, receive, send, self.error, None)


def answer_refusals(app: object) -> None:
    """Let a Starlette or FastAPI app answer a ``GuardError`` from its endpoints as the
    guard does.

    Wrapped from outside (``OAuthGuard(app, ...)``), the guard sees errors only after the
    app's own error handling, which would make a refusal by a FastAPI dependency a 500.
    """
    add_handler = getattr(app, "add_exception_handler", None)
    if callable(add_handler):
        add_handler(GuardError, _answer_refusal)


async def _answer_refusal(connection: HTTPConnection, error: Exception) -> Response | None:
    if not isinstance(error, GuardError):  # registered for GuardError only
        raise error
    refusal = Refusal(connection.scope["oauthguard"], error)
    if isinstance(connection, WebSocket):
        await refusal(connection.scope, connection.receive, connection.send)
        return None
    return refusal


class ProtectedApp:
    """An ASGI app (an ``HTTPEndpoint`` or ``WebSocketEndpoint`` class, a sub-application)
    behind a requirement."""

    def __init__(self, requirement: Requirement, app: ASGIApp) -> None:
        self.requirement = requirement
        self.app = app
        self.__name__ = getattr(app, "__name__", type(app).__name__)
        self.__doc__ = getattr(app, "__doc__", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.requirement.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
