"""Starlette glue for ``require(...)``: the refusal response, protected ASGI apps, and
``GuardError`` handling inside the app."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Host, Mount
from starlette.websockets import WebSocket

from oauthguard._asgi.context import Refuse, context_of
from oauthguard._asgi.types import ASGIApp, Receive, Scope, Send
from oauthguard._wire.errors import GuardError

# How deep a started Starlette app's middleware is searched for its ExceptionMiddleware, and
# how many apps and middleware an app is searched through for the apps inside it.
_MAX_MIDDLEWARE = 64
_MAX_APPS = 256


class Guarding(Protocol):
    """What ``ProtectedApp`` needs of a requirement: the response that refuses a request."""

    def refusal(self, scope: Scope) -> Response | None: ...


def connection_of(
    requirement: object, args: tuple[Any, ...], kwargs: dict[str, Any]
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

    def __init__(self, refuse: Refuse, error: GuardError) -> None:
        super().__init__(status_code=error.status)
        self.refuse = refuse
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.refuse(scope, receive, send, self.error)


def answer_refusals(app: object) -> bool:
    """Let a Starlette or FastAPI app (or Starlette's ``ExceptionMiddleware``, the app a
    guard added with ``add_middleware`` wraps) answer a ``GuardError`` from its endpoints as
    the guard does; whether it will.

    Wrapped from outside (``OAuthGuard(app, ...)``), the guard sees errors only after the
    app's own error handling, which would make a refusal by a FastAPI dependency a 500.
    """
    for handles in _refusal_handlers_within(app):
        handles.add_exception_handler(GuardError, _answer_refusal)
    return refusal_handler_of(app) is not None


def _refusal_handlers_within(app: object) -> list[Any]:
    """What takes a refusal handler in ``app`` and in every app inside it: past middleware
    that wraps one (``CORSMiddleware(api)``), and in what a Starlette app mounts (a FastAPI
    sub-application): each answers its own endpoints' errors, and would make a refusal by a
    dependency a 500. Bounded: a cycle or a huge tree is searched no further."""
    found: dict[int, Any] = {}
    pending: list[object] = [app]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_APPS:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        handles = refusal_handler_of(node)
        if handles is not None:
            found.setdefault(id(handles), handles)
        try:
            routes = getattr(node, "routes", None)
        except Exception:  # a property that cannot answer yet: no mounts to look in
            routes = None
        if isinstance(routes, list):
            pending.extend(route.app for route in routes if isinstance(route, Mount | Host))
        else:
            pending.append(getattr(node, "app", None))
    return list(found.values())


def refusal_handler_of(app: object) -> Any:
    """What takes an exception handler for ``app`` and uses it from now on, or None: the app
    (``add_exception_handler``), or in a Starlette app already started, which built its
    handlers into its middleware then and ignores any added later, that middleware."""
    stack = getattr(app, "middleware_stack", None)
    if stack is None:
        return app if callable(getattr(app, "add_exception_handler", None)) else None
    for _ in range(_MAX_MIDDLEWARE):  # each middleware holds the next in .app
        if isinstance(stack, ExceptionMiddleware):
            return stack
        stack = getattr(stack, "app", None)
    return None


async def _answer_refusal(connection: HTTPConnection, error: Exception) -> Response | None:
    if not isinstance(error, GuardError):  # registered for GuardError only
        raise error
    refusal = Refusal(context_of(connection.scope, "a refusal").refuse, error)
    if isinstance(connection, WebSocket):
        await refusal(connection.scope, connection.receive, connection.send)
        return None
    return refusal


class ProtectedApp:
    """An ASGI app (an ``HTTPEndpoint`` or ``WebSocketEndpoint`` class, a sub-application)
    behind a requirement."""

    def __init__(self, requirement: Guarding, app: ASGIApp) -> None:
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
